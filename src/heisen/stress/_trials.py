"""The scenario engine every load-bearing phase re-runs: setup → load → invariants → history.

`run_trials(ctx, conditions)` runs `conditions.trials` trials of the
pipeline's scenario against the running system and returns the figures the
manifest contract names (trials, violations, violation_rate, ci95, requests,
rps, latency_ms, status_codes, errors). Phases differ only in the conditions
they set up around it (stubs, toxics, CPU limits, faults) and in the
`Conditions` they pass (a label, the load, request body overrides, workers).

Each trial: the scenario's `setup:` steps, then the load (`_load`), then
every invariant (`_verdicts`). A trial is violating when one invariant
definitely failed (a verdict of None, "could not tell", is not a violation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from heisen import events
from heisen._schema._system import LoadStep
from heisen._stats import rate_with_interval
from heisen.errors import SystemUnavailable
from heisen.phase import Finding, PhaseContext
from heisen.stress import _verdicts
from heisen.stress._latency import summarize
from heisen.stress._load import run_steps
from heisen.stress._records import RequestRecord
from heisen.stress._render import RequestFactory

MAX_FINDINGS = 5


@dataclass(frozen=True)
class Conditions:
    """How one phase runs the scenario.

    `workers`: processes for sustained load models (an int or "auto"; a burst
    always stays in one process).
    """

    label: str
    trials: int
    load: Sequence[LoadStep] | None = None
    stop: str = "all"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    invariants: Sequence[str] | None = None  # names to check; None = all
    workers: int | Literal["auto"] = 1


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
    return _TrialRunner(ctx, conditions).run()


class _TrialRunner:
    def __init__(self, ctx: PhaseContext, conditions: Conditions) -> None:
        if ctx.system is None:
            raise SystemUnavailable("the scenario needs a running system")
        self.ctx = ctx
        self.system = ctx.system
        self.conditions = conditions
        self.pipeline = ctx.loaded.pipeline
        self.load = list(conditions.load or self.pipeline.scenario.load)
        self.invariants = [
            inv
            for inv in self.pipeline.invariants
            if conditions.invariants is None or inv.name in conditions.invariants
        ]
        self.history_path = ctx.run_dir / f"{conditions.label}-history.jsonl"
        self.specs = {
            name: r.history for name, r in self.pipeline.scenario.requests.items() if r.history
        }

    def run(self) -> TrialsResult:
        outcomes: list[TrialOutcome] = []
        findings: list[Finding] = []
        merged: list[RequestRecord] = []
        self.history_path.unlink(missing_ok=True)
        violations = 0
        for trial in range(1, self.conditions.trials + 1):
            outcome, records, trial_findings = self._trial(trial)
            outcomes.append(outcome)
            merged.extend(records)
            if outcome.violated:
                violations += 1
                if len(findings) < MAX_FINDINGS:
                    findings.extend(trial_findings)
            self.ctx.emit(
                events.TrialFinished(
                    self.conditions.label,
                    trial,
                    self.conditions.trials,
                    outcome.violated,
                    outcome.summary.get("requests", 0),
                    outcome.summary.get("rps", 0.0),
                    outcome.summary.get("latency_ms", {}).get("p99"),
                    violations,
                )
            )
            if outcome.violated and self.conditions.stop == "first-violation":
                break
        outputs: dict[str, Any] = {
            **rate_with_interval(violations, len(outcomes)),
            **summarize(merged).to_dict(),
        }
        outputs["rps"] = round(_mean([o.summary.get("rps", 0.0) for o in outcomes]), 1)
        spreads = sorted(o.release_spread_ms for o in outcomes if o.release_spread_ms is not None)
        if spreads:
            outputs["release_spread_ms"] = {
                "median": round(spreads[len(spreads) // 2], 3),
                "max": round(spreads[-1], 3),
            }
        outputs["per_trial"] = [
            {
                "trial": o.trial,
                "violated": o.violated,
                "requests": o.summary.get("requests"),
                "p99_ms": o.summary.get("latency_ms", {}).get("p99"),
                "violations": [v["name"] for v in o.verdicts if v["held"] is False],
            }
            for o in outcomes
        ]
        outputs["per_invariant"] = per_invariant(outcomes)
        artifacts = [self.history_path.name] if self.history_path.exists() else []
        return TrialsResult(outputs, outcomes, _dedupe(findings), merged, artifacts)

    def _trial(self, trial: int) -> tuple[TrialOutcome, list[RequestRecord], list[Finding]]:
        from heisen.oracle.pipeline_invariants import run_setup

        run_setup(self.pipeline, self.system)
        factory = RequestFactory(
            self.pipeline.scenario.requests,
            trial=trial,
            seed=self.ctx.seed,
            run_id=self.ctx.manifest.run.id,
            faker_names=(self.conditions.label, trial),
            overrides=self.conditions.overrides,
        )
        host, port = self.system.service_address()
        loaded = asyncio.run(
            run_steps(
                self.load,
                factory,
                host=host,
                port=port,
                templates=self.pipeline.scenario.requests,
                timeout_s=self.pipeline.scenario.timeout,
                workers=self.conditions.workers,
            )
        )
        verdicts, findings = self._check(trial, loaded.records, factory)
        spread = loaded.release_spread_s
        outcome = TrialOutcome(
            trial,
            any(v["held"] is False for v in verdicts),
            verdicts,
            summarize(loaded.records).to_dict(),
            spread * 1000 if spread is not None else None,
        )
        return outcome, loaded.records, findings

    def _check(
        self, trial: int, records: list[RequestRecord], factory: RequestFactory
    ) -> tuple[list[dict[str, Any]], list[Finding]]:
        from heisen.oracle.pipeline_invariants import is_probe

        verdicts: list[dict[str, Any]] = []
        findings: list[Finding] = []
        context = {
            "trial": trial,
            "seed": self.ctx.seed,
            "run_dir": str(self.ctx.run_dir),
            "deps": {},
            "services": {},
        }
        for invariant in self.invariants:
            if is_probe(invariant):
                verdict = _verdicts.probe(self.pipeline, self.system, invariant, context)
            elif invariant.acknowledged is not None:
                verdict = _verdicts.acknowledged(self.system, invariant, records, factory.sent)
            else:
                verdict = _verdicts.history(
                    invariant,
                    records,
                    factory.sent,
                    self.specs,
                    trial=trial,
                    path=self.history_path,
                )
            verdicts.append(verdict)
            if verdict["held"] is False:
                findings.append(
                    Finding(
                        self.conditions.label,
                        invariant.name,
                        f"trial {trial}: {verdict['message']}",
                        self._replay_command(),
                        verdict.get("value", {}),
                    )
                )
        return verdicts, findings

    def _replay_command(self) -> str:
        phase = self.conditions.label if self.conditions.label in _PHASES else "stress"
        return f"heisen {phase} {self.ctx.loaded.path} --seed {self.ctx.seed}"


_PHASES = ("stress", "isolate", "contain", "chaos", "fuzz")


def per_invariant(outcomes: Sequence[TrialOutcome]) -> dict[str, dict[str, Any]]:
    """Each invariant's own violation rate: which race the overall rate is made of."""
    names = [v["name"] for v in outcomes[0].verdicts] if outcomes else []
    rates = {}
    for name in names:
        violated = sum(
            1 for o in outcomes for v in o.verdicts if v["name"] == name and v["held"] is False
        )
        rates[name] = rate_with_interval(violated, len(outcomes))
    return rates


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.name, finding)
    return list(seen.values())
