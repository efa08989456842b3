"""The scenario engine every load-bearing phase re-runs: setup → load → invariants → history.

`run_trials(ctx, conditions)` runs `conditions.trials` trials of the
pipeline's scenario against the running system and returns the figures the
manifest contract names (trials, violations, violation_rate, ci95, requests,
rps, latency_ms, status_codes, errors). Phases differ only in the conditions
they set up around it (stubs, toxics, CPU limits, faults) and in the
`Conditions` they pass (a label, the load, request body overrides).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from heisen import events, seeds
from heisen._schema._system import Invariant, LoadStep
from heisen._stats import rate_with_interval
from heisen.errors import SystemUnavailable
from heisen.phase import Finding, PhaseContext
from heisen.pipeline import DependencyKind
from heisen.stress import _history
from heisen.stress._latency import summarize
from heisen.stress._records import RequestRecord
from heisen.stress._render import RequestFactory


@dataclass(frozen=True)
class Conditions:
    """How one phase runs the scenario."""

    label: str
    trials: int
    load: Sequence[LoadStep] | None = None
    stop: str = "all"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    invariants: Sequence[str] | None = None  # names to check; None = all
    keep_records: bool = False


@dataclass
class TrialOutcome:
    trial: int
    violated: bool
    verdicts: list[dict[str, Any]]
    summary: dict[str, Any]
    release_spread_ms: float | None = None


@dataclass
class TrialsResult:
    outputs: dict[str, Any]
    trials: list[TrialOutcome]
    findings: list[Finding]
    records: list[RequestRecord]
    artifacts: list[str]


def run_trials(ctx: PhaseContext, conditions: Conditions) -> TrialsResult:
    """Run the scenario `conditions.trials` times; see the module docstring."""
    runner = _TrialRunner(ctx, conditions)
    return runner.run()


class _TrialRunner:
    def __init__(self, ctx: PhaseContext, conditions: Conditions) -> None:
        self.ctx = ctx
        self.conditions = conditions
        self.pipeline = ctx.loaded.pipeline
        self.system = ctx.system
        if self.system is None:
            raise SystemUnavailable("the scenario needs a running system")
        self.load = list(conditions.load or self.pipeline.scenario.load)
        self.invariants = [
            inv for inv in self.pipeline.invariants
            if conditions.invariants is None or inv.name in conditions.invariants
        ]
        self.history_path = ctx.run_dir / f"{conditions.label}-history.jsonl"
        self.specs = {name: r.history for name, r in self.pipeline.scenario.requests.items() if r.history}

    def run(self) -> TrialsResult:
        outcomes: list[TrialOutcome] = []
        findings: list[Finding] = []
        all_records: list[RequestRecord] = []
        merged: list[RequestRecord] = []
        self.history_path.unlink(missing_ok=True)
        violations = 0
        for trial in range(1, self.conditions.trials + 1):
            outcome, records, trial_findings = self._trial(trial)
            outcomes.append(outcome)
            merged.extend(records)
            if self.conditions.keep_records:
                all_records.extend(records)
            if outcome.violated:
                violations += 1
                if not findings or len(findings) < 5:
                    findings.extend(trial_findings)
            p99 = outcome.summary.get("latency_ms", {}).get("p99")
            self.ctx.emit(events.TrialFinished(
                self.conditions.label, trial, self.conditions.trials, outcome.violated,
                outcome.summary.get("requests", 0), outcome.summary.get("rps", 0.0), p99, violations,
            ))
            if outcome.violated and self.conditions.stop == "first-violation":
                break
        summary = summarize(merged).to_dict()
        outputs: dict[str, Any] = {**rate_with_interval(violations, len(outcomes)), **summary}
        outputs["rps"] = round(_mean([o.summary.get("rps", 0.0) for o in outcomes]), 1)
        spreads = [o.release_spread_ms for o in outcomes if o.release_spread_ms is not None]
        if spreads:
            outputs["release_spread_ms"] = {"median": round(sorted(spreads)[len(spreads) // 2], 3),
                                            "max": round(max(spreads), 3)}
        outputs["per_trial"] = [
            {"trial": o.trial, "violated": o.violated, "requests": o.summary.get("requests"),
             "p99_ms": o.summary.get("latency_ms", {}).get("p99"),
             "violations": [v["name"] for v in o.verdicts if v["held"] is False]}
            for o in outcomes
        ]
        artifacts = [self.history_path.name] if self.history_path.exists() else []
        return TrialsResult(outputs, outcomes, _dedupe(findings), all_records or merged, artifacts)

    # ------------------------------------------------------------------ one trial

    def _trial(self, trial: int) -> tuple[TrialOutcome, list[RequestRecord], list[Finding]]:
        from heisen.oracle.pipeline_invariants import run_setup

        run_setup(self.pipeline, self.system)
        factory = RequestFactory(
            self.pipeline.scenario.requests, trial=trial, seed=self.ctx.seed, run_id=self.ctx.manifest.run.id,
            faker=seeds.faker(self.ctx.seed, self.conditions.label, trial), overrides=self.conditions.overrides,
        )
        records, spread = asyncio.run(self._load(factory))
        verdicts, findings = self._check(trial, records, factory)
        violated = any(v["held"] is False for v in verdicts)
        outcome = TrialOutcome(trial, violated, verdicts, summarize(records).to_dict(),
                               spread * 1000 if spread is not None else None)
        return outcome, records, findings

    async def _load(self, factory: RequestFactory) -> tuple[list[RequestRecord], float | None]:
        from heisen.stress import _models
        from heisen.stress._burst import run_burst

        host, port = self.system.service_address()
        default = next(iter(self.pipeline.scenario.requests))
        timeout = self.pipeline.scenario.timeout
        records: list[RequestRecord] = []
        spread: float | None = None
        index = 0
        for step in self.load:
            make = factory.for_step(step, default)
            kind = step.kind
            if kind == "burst":
                assert step.burst is not None
                requests = [make(index + i) for i in range(step.burst.requests)]
                result = await run_burst(host, port, requests, http2=self._http2(step), timeout_s=timeout)
                records.extend(_reindexed(result.records, index))
                spread = max(spread or 0.0, result.release_spread_s)
                index += step.burst.requests
            elif kind == "pause":
                assert step.pause is not None
                await _models.pause(step.pause.during)
            else:
                step_records = await self._sustained(step, make, host, port, index, timeout)
                records.extend(step_records)
                index += len(step_records) + 1
        return records, spread

    async def _sustained(self, step: LoadStep, make: Callable[[int], Any], host: str, port: int,
                         index: int, timeout: float) -> list[RequestRecord]:
        from heisen.stress import _models

        common = {"host": host, "port": port, "make_request": lambda i: make(i), "timeout_s": timeout,
                  "index_start": index}
        if step.inject is not None:
            return await _models.inject(step.inject.rate, step.inject.during, **common)
        if step.ramp_inject is not None:
            r = step.ramp_inject
            return await _models.ramp_inject(r.from_rate, r.to_rate, r.during, **common)
        assert step.constant is not None
        return await _models.constant(step.constant.copies, step.constant.during, **common)

    def _http2(self, step: LoadStep) -> bool:
        names = getattr(step, step.kind).request_names() or [next(iter(self.pipeline.scenario.requests))]
        return any(self.pipeline.scenario.requests[name].http2 for name in names)

    # ------------------------------------------------------------------ the oracle

    def _check(self, trial: int, records: list[RequestRecord], factory: RequestFactory
               ) -> tuple[list[dict[str, Any]], list[Finding]]:
        from heisen.oracle.pipeline_invariants import check_acknowledged, evaluate_probe, is_probe

        verdicts: list[dict[str, Any]] = []
        findings: list[Finding] = []
        context = {"trial": trial, "seed": self.ctx.seed, "run_dir": str(self.ctx.run_dir),
                   "deps": {}, "services": {}}
        replay = self._replay_command()
        for invariant in self.invariants:
            if is_probe(invariant):
                verdict = evaluate_probe(self.pipeline, self.system, invariant, context).to_dict()
            elif invariant.acknowledged is not None:
                verdict = self._acknowledged(invariant, records, factory, check_acknowledged)
            else:
                verdict = self._history_verdict(invariant, records, factory, trial)
            verdicts.append(verdict)
            if verdict["held"] is False:
                findings.append(Finding(self.conditions.label, invariant.name,
                                        f"trial {trial}: {verdict['message']}", replay, verdict.get("value", {})))
        return verdicts, findings

    def _acknowledged(self, invariant: Invariant, records: list[RequestRecord], factory: RequestFactory,
                      check: Any) -> dict[str, Any]:
        ack = invariant.acknowledged
        assert ack is not None
        ids: list[Any] = []
        unknown = 0
        for record in records:
            rendered = factory.sent.get(record.index)
            if rendered is None or rendered.name != ack.request:
                continue
            if record.error is not None or (record.status is not None and record.status >= 500):
                unknown += 1
            elif record.status in ack.status:
                value = _history._field(_history._response_json(record), ack.id)
                if value is not None:
                    ids.append(value)
        dsn = self.system.dependency_of_kind(DependencyKind.POSTGRES, ack.on)
        loss = check(dsn, ack.sql, ids, unknown)
        held = loss["lost"] == 0
        message = (f"{loss['acknowledged']} acknowledged, {loss['persisted']} persisted, {loss['lost']} lost, "
                   f"{loss['unknown']} unknown")
        return {"name": invariant.name, "held": held, "message": message, "value": loss}

    def _history_verdict(self, invariant: Invariant, records: list[RequestRecord], factory: RequestFactory,
                         trial: int) -> dict[str, Any]:
        from heisen.oracle.checkers import check, render_timeline
        from heisen.oracle.history import Operation

        ops = _history.with_initial_values(_history.operations(records, factory.sent, self.specs), self.specs)
        with self.history_path.open("a", encoding="utf-8") as handle:
            for op in ops:
                handle.write(json.dumps({**op, "trial": trial}) + "\n")
        operations = [Operation.from_dict({**op, "index": i}) for i, op in enumerate(ops)]
        assert invariant.history is not None
        result = check(operations, invariant.history, time_budget_s=5.0)
        if result.valid is None:
            return {"name": invariant.name, "held": None, "message": "history check ran out of budget (unknown)",
                    "value": {}}
        if result.valid:
            return {"name": invariant.name, "held": True, "message": f"{len(operations)} operations linearizable",
                    "value": {}}
        violation = result.violations[0]
        return {"name": invariant.name, "held": False,
                "message": f"{violation.kind} on {violation.key}: {violation.message}",
                "value": {"timeline": render_timeline(violation.operations),
                          "operations": [op.to_dict() for op in violation.operations]}}

    def _replay_command(self) -> str:
        return (f"heisen {self.conditions.label if self.conditions.label in _PHASES else 'stress'} "
                f"{self.ctx.loaded.path} --seed {self.ctx.seed}")


_PHASES = ("stress", "isolate", "contain", "chaos", "fuzz")


def _reindexed(records: Sequence[RequestRecord], offset: int) -> list[RequestRecord]:
    if offset == 0:
        return list(records)
    from dataclasses import replace

    return [replace(record, index=record.index + offset) for record in records]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.name, finding)
    return list(seen.values())
