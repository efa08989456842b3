"""The scenario engine every load-bearing phase re-runs: setup → load → invariants → history.

`run_trials(ctx, conditions)` runs `conditions.trials` trials of the
pipeline's scenario against the running system and returns the figures the
manifest contract names (trials, violations, violation_rate, ci95, requests,
rps, latency_ms, status_codes, errors). Phases differ only in the conditions
they set up around it (stubs, toxics, CPU limits, faults) and in the
`Conditions` they pass (a label, the load, request body overrides, workers).

Each trial: the scenario's `setup:` steps, then the load (`_load`), then
every invariant (`_verdicts`). A trial is violating when one invariant
definitely failed. An invariant that could not be evaluated (its probe
failed, its `expect:` named something the probe does not give) stops the
trials with `NotEvaluated`, carrying the figures so far: a verdict is never
drawn from it. Any other exception stops them with `PhaseCrashed`.

`vacuity(outputs)` says why a run without violations proves nothing (the
requests never overlapped, too many outcomes unknown, a history check that
could not decide); the phases report that as inconclusive.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from heisen import events
from heisen._interrupts import raise_if_interrupted
from heisen._serialised import JsonObject
from heisen._stats import mean_with_interval, rate_with_interval
from heisen.errors import HeisenError, NotEvaluated, PhaseCrashed, SystemUnavailable
from heisen.oracle import Verdict
from heisen.oracle.probes import ProbeError, reusing_connections
from heisen.outputs import (
    Bound,
    BurstLine,
    Bursts,
    BurstSpread,
    InvariantFigures,
    LoadFigures,
    Outcomes,
    Overlap,
    PerOperationRate,
    Spread,
    TrialError,
    TrialLine,
    Undecided,
)
from heisen.phase import Finding, PhaseContext
from heisen.schema import LoadStep, SetupStep, TrialsSection
from heisen.stress._confidence import Goal, bound, in_words
from heisen.stress._latency import LoadSummary, summarize
from heisen.stress._load import BurstFacts, run_steps
from heisen.stress._load_facts import (
    TOTAL,
    Counts,
    add_counts,
    empty_counts,
    load_variables,
    max_in_flight,
)
from heisen.stress._load_log import append_load_log, expected_statuses, load_log_name
from heisen.stress._records import RequestRecord, with_replicas
from heisen.stress._render import RequestFactory
from heisen.stress._verdicts import check_invariants

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
    stop: Literal["first-violation", "all"] = "all"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    invariants: Sequence[str] | None = None  # names to check; None = all
    workers: int | Literal["auto"] = 1
    confidence: Goal | None = None
    setup: Sequence[SetupStep] | None = None  # instead of the scenario's; None = the scenario's
    # (trials run, violating trials) -> True once the caller's question is answered
    decided: Callable[[int, int], bool] | None = None

    @classmethod
    def of_section(
        cls,
        label: str,
        section: TrialsSection,
        options: Mapping[str, Any],
        *,
        load: Sequence[LoadStep] | None = None,
        workers: int | Literal["auto"] = 1,
    ) -> Conditions:
        """A phase section's trials, stop rule, load (unless `load` is given) and `confidence:`;
        `--trials N` overrides both the count and the confidence goal (a replay runs a fixed
        number of trials)."""
        goal = section.confidence
        trials = options.get("trials")
        return cls(
            label=label,
            trials=int(trials or section.trials),
            load=section.load if load is None else load,
            stop=section.stop,
            invariants=section.invariants,
            workers=workers,
            confidence=None
            if goal is None or trials
            else Goal(goal.rate_below, goal.level, goal.max_duration),
        )

    @property
    def planned_trials(self) -> int:
        return self.confidence.trials_needed if self.confidence else self.trials


@dataclass
class TrialOutcome:
    trial: int
    violated: bool
    verdicts: list[Verdict]
    summary: LoadSummary
    release_spread_ms: float | None = None
    in_flight: int = 0
    records_problem: str | None = None  # not one record per request sent: nothing to judge
    bursts: list[BurstFacts] = field(default_factory=list)
    totals: Counts | None = None  # the trial's load.total


@dataclass
class TrialsResult:
    outputs: JsonObject
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
        self.load_log_path = ctx.run_dir / load_log_name(conditions.label)
        self.expected = expected_statuses(self.pipeline.scenario.requests)

    def run(self) -> TrialsResult:
        with reusing_connections():  # the probes' connections last the trials, not one trial
            return self._run()

    def _run(self) -> TrialsResult:
        self.outcomes: list[TrialOutcome] = []
        self.findings: list[Finding] = []
        self.merged: list[RequestRecord] = []
        self.history_path.unlink(missing_ok=True)
        self.load_log_path.unlink(missing_ok=True)
        goal = self.conditions.confidence
        planned = self.conditions.planned_trials
        self.started = time.monotonic()
        for trial in range(1, planned + 1):
            raise_if_interrupted()
            try:
                outcome, records, trial_findings = self._trial(trial)
            except ProbeError as exc:
                raise self._not_evaluated(trial, "scenario.setup", exc.fault, str(exc)) from exc
            except HeisenError:
                raise
            except Exception as exc:
                raise PhaseCrashed(
                    f"{self.conditions.label} trial {trial}: heisen failed: "
                    f"{type(exc).__name__}: {exc}",
                    outputs=self._outputs(),
                    findings=_dedupe(self.findings),
                ) from exc
            if outcome.records_problem is not None:
                raise PhaseCrashed(
                    f"{self.conditions.label} trial {trial}: {outcome.records_problem}: "
                    "the trial cannot be judged",
                    outputs=self._outputs(),
                    findings=_dedupe(self.findings),
                )
            self.outcomes.append(outcome)
            self.merged.extend(records)
            if outcome.violated and len(self.findings) < MAX_FINDINGS:
                self.findings.extend(trial_findings)
            errored = next((v for v in outcome.verdicts if v.errored), None)
            if errored is not None:
                assert errored.fault is not None
                raise self._not_evaluated(trial, errored.name, errored.fault, errored.message)
            self.ctx.emit(
                events.TrialFinished(
                    self.conditions.label,
                    trial,
                    planned,
                    outcome.violated,
                    outcome.summary.requests,
                    outcome.summary.shown_rps,
                    outcome.summary.shown_p99_ms,
                    sum(o.violated for o in self.outcomes),
                )
            )
            if outcome.violated and (self.conditions.stop == "first-violation" or goal):
                break
            decided = self.conditions.decided
            if decided is not None and decided(len(self.outcomes), self._violating()):
                break
            if goal and time.monotonic() - self.started > goal.max_duration_s:
                break
        artifacts = [p.name for p in (self.history_path, self.load_log_path) if p.exists()]
        return TrialsResult(
            self._outputs(), self.outcomes, _dedupe(self.findings), self.merged, artifacts
        )

    def _violating(self) -> int:
        return sum(outcome.violated for outcome in self.outcomes)

    def _not_evaluated(self, trial: int, where: str, fault: str, message: str) -> NotEvaluated:
        """Stop the trials: an invariant (or the setup) that cannot be evaluated decides nothing."""
        figures = self._figures()
        figures.trial_errors = [
            TrialError(trial=trial, invariant=where, kind=fault, message=message)
        ]
        outputs = figures.to_manifest()
        return NotEvaluated(
            f"{self.conditions.label} trial {trial}: {where} could not be evaluated: {message}",
            fault=fault,
            outputs=outputs,
            findings=_dedupe(self.findings),
        )

    def _outputs(self) -> JsonObject:
        """The figures so far, as the manifest holds them."""
        return self._figures().to_manifest()

    def _figures(self) -> LoadFigures:
        outcomes = self.outcomes
        violations = sum(o.violated for o in outcomes)
        figures = LoadFigures.from_manifest(
            {**rate_with_interval(violations, len(outcomes)), **summarize(self.merged).to_dict()}
        )
        figures.rps = round(_mean([o.summary.shown_rps for o in outcomes]), 1)
        elapsed = time.monotonic() - self.started
        figures.trials_per_s = round(len(outcomes) / elapsed, 3) if elapsed > 0 else None
        if self.conditions.confidence is not None:
            figures.bound = bound(self.conditions.confidence, len(outcomes), violations)
        spreads = sorted(o.release_spread_ms for o in outcomes if o.release_spread_ms is not None)
        if spreads:
            figures.release_spread_ms = Spread(
                median=round(spreads[len(spreads) // 2], 3), max=round(spreads[-1], 3)
            )
        bursts = every_burst(outcomes)
        if bursts is not None:
            figures.bursts = bursts
        figures.overlap = Overlap(
            min_in_flight=min((o.in_flight for o in outcomes), default=0),
            trials_without_overlap=[o.trial for o in outcomes if o.in_flight < 2],
        )
        total = empty_counts()
        for o in outcomes:
            if o.totals is not None:
                add_counts(total, o.totals)
        figures.outcomes = Outcomes(
            sent=total["sent"],
            ok=total["ok"],
            failed=total["failed"],
            info=total["info"],
            queued=total["queued"],
            info_allowed=self.pipeline.scenario.unknown_outcomes,
        )
        undecided = [
            Undecided(trial=o.trial, invariant=v.name, message=v.message)
            for o in outcomes
            for v in o.verdicts
            if v.undecided
        ]
        if undecided:
            figures.undecided = undecided
        figures.per_trial = [
            TrialLine(
                trial=o.trial,
                violated=o.violated,
                requests=o.summary.requests,
                p99_ms=o.summary.shown_p99_ms,
                in_flight_max=o.in_flight,
                violations=[v.name for v in o.verdicts if v.violated],
            )
            for o in outcomes
        ]
        figures.per_invariant = per_invariant(
            outcomes, {inv.name for inv in self.invariants if inv.severity is not None}
        )
        return figures

    def _trial(self, trial: int) -> tuple[TrialOutcome, list[RequestRecord], list[Finding]]:
        from heisen.oracle.pipeline_invariants import run_setup
        from heisen.system import service_tls

        run_setup(self.pipeline, self.system, self.conditions.setup)
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
                replicas=self._replica_addresses(),
                tls=service_tls(self.pipeline, None, self.ctx.loaded.base_dir),
            )
        )
        # which replica served each record, by its connection ({} where that is unknown)
        loaded = replace(
            loaded, records=with_proxied_replicas(loaded.records, self.system.replica_of_peers())
        )
        verdicts, findings, totals = self._check(trial, loaded.records, factory)
        append_load_log(self.load_log_path, loaded.records, factory.sent, self.expected)
        spread = loaded.release_spread_s
        outcome = TrialOutcome(
            trial,
            any(v.violated for v in verdicts),
            verdicts,
            summarize(loaded.records),
            spread * 1000 if spread is not None else None,
            max_in_flight(loaded.records),
            loaded.missing_records(),
            list(loaded.bursts),
            totals,
        )
        return outcome, loaded.records, findings

    def _check(
        self, trial: int, records: list[RequestRecord], factory: RequestFactory
    ) -> tuple[list[Verdict], list[Finding], Counts]:
        requests = list(self.pipeline.scenario.requests)
        load = load_variables(records, factory.sent, requests, self.expected)
        verdicts = check_invariants(
            self.invariants,
            pipeline=self.pipeline,
            system=self.system,
            records=records,
            sent=factory.sent,
            trial=trial,
            seed=self.ctx.seed,
            run_dir=self.ctx.run_dir,
            history_path=self.history_path,
            load=load,
        )
        findings = [
            Finding(
                self.conditions.label,
                verdict.name,
                f"trial {trial}: {verdict.message}",
                self._replay_command(),
                verdict.value,
            )
            for verdict in verdicts
            if verdict.violated
        ]
        return verdicts, findings, load[TOTAL]

    def _replica_addresses(self) -> dict[int, tuple[str, int]] | None:
        """Each replica's own address, when a load step aims at one (`replica:`)."""
        if all(step.replica is None for step in self.load):
            return None
        from heisen.system import LOOPBACK

        return {
            state.index: (LOOPBACK, state.port) for state in self.system.replicas().replicas_info()
        }

    def _replay_command(self) -> str:
        """A seed fixes heisen's choices, not the system's timing: the replay re-runs the
        scenario REPLAY_TRIALS times and its violation rate says how often it reproduced."""
        phase = self.conditions.label if self.conditions.label in _PHASES else "stress"
        command = f"heisen {phase} {self.ctx.loaded.path} --seed {self.ctx.seed}"
        return command + (f" --trials {REPLAY_TRIALS}" if phase in _WITH_TRIALS else "")


_PHASES = ("stress", "isolate", "contain", "chaos", "fuzz")
_WITH_TRIALS = ("stress", "isolate", "contain")
REPLAY_TRIALS = 20


UNKNOWN_OUTCOMES_LIMIT = 0.05
"""Above this share of requests with an unknown outcome (timeouts, resets), a trial run proves
nothing; `scenario.unknown_outcomes` sets another."""


def with_proxied_replicas(
    records: Sequence[RequestRecord], replica_of_port: Mapping[int, int]
) -> list[RequestRecord]:
    """`records` with the replica the front proxy gave each connection; a record that already
    names its replica (its step was aimed at one, past the proxy) keeps it."""
    proxied = with_replicas(records, replica_of_port)
    return [
        sent if sent.replica is not None else stamped
        for sent, stamped in zip(records, proxied, strict=True)
    ]


def vacuity(outputs: Mapping[str, Any]) -> str | None:
    """Why trials without violations do not show that the race is absent, or None if they do."""
    if not outputs.get("trials"):
        return "no trial ran"
    lonely = outputs["overlap"]["trials_without_overlap"]
    if lonely:
        which = ", ".join(str(t) for t in lonely[:10]) + (" …" if len(lonely) > 10 else "")
        return f"never two requests in flight at once in trial(s) {which}: the load did not contend"
    counts = outputs["outcomes"]
    allowed = counts.get("info_allowed", UNKNOWN_OUTCOMES_LIMIT)
    if counts["sent"] and counts["info"] / counts["sent"] > allowed:
        return (
            f"{counts['info']} of {counts['sent']} requests timed out or were cut off (outcome "
            f"unknown), over the {allowed:.0%} scenario.unknown_outcomes allows: the load did "
            "not complete"
        )
    if outputs.get("bound") and not outputs["bound"]["proven"]:
        return in_words(Bound.from_manifest(outputs["bound"]))
    if outputs.get("undecided"):
        first = outputs["undecided"][0]
        return f"{first['invariant']} could not be decided in trial {first['trial']}: {first['message']}"
    return None


def every_burst(outcomes: Sequence[TrialOutcome]) -> Bursts | None:
    """Every burst of the trials, counted by protocol, with its release spread (None: no
    burst). Percentiles are nearest-rank over the bursts."""
    lines = [
        BurstLine(
            trial=o.trial,
            step=b.step,
            protocol=b.protocol,
            requests=b.requests,
            connections=b.connections,
            release_spread_ms=round(b.release_spread_ms, 3),
        )
        for o in outcomes
        for b in o.bursts
    ]
    if not lines:
        return None
    protocols: dict[str, int] = {}
    for line in lines:
        protocols[line.protocol] = protocols.get(line.protocol, 0) + 1
    reasons = {f"{b.protocol}: {b.reason}": None for o in outcomes for b in o.bursts}
    spreads = sorted(float(line.release_spread_ms) for line in lines)
    return Bursts(
        count=len(lines),
        protocols=protocols,
        reasons=list(reasons),
        release_spread_ms=BurstSpread(
            median=spreads[len(spreads) // 2],
            p90=spreads[math.ceil(0.9 * len(spreads)) - 1],
            max=spreads[-1],
        ),
        per_burst=lines,
    )


def per_invariant(
    outcomes: Sequence[TrialOutcome], with_severity: Collection[str] = ()
) -> dict[str, InvariantFigures]:
    """Each invariant's own violation rate: which race the overall rate is made of; and, for
    the invariants of `with_severity` (those with `severity:`), its `per_operation_rate`."""
    names = [v.name for v in outcomes[0].verdicts] if outcomes else []
    rates = {}
    for name in names:
        violated = sum(1 for o in outcomes for v in o.verdicts if v.name == name and v.violated)
        figures = InvariantFigures.from_manifest(rate_with_interval(violated, len(outcomes)))
        if name in with_severity:
            values = severity_values(outcomes, name)
            figures.per_operation_rate = PerOperationRate.from_manifest(mean_with_interval(values))
        rates[name] = figures
    return rates


def severity_values(outcomes: Sequence[TrialOutcome], name: str) -> list[float]:
    """The per-trial values of invariant `name`'s `severity:`, one per trial.

    A trial where the invariant held counts 0: the race did not hit. The expression is
    evaluated only when it was violated (`heisen.oracle.pipeline_invariants`), so that
    `(sold - capacity) / load.checkout.ok` neither counts negative while tickets remain
    nor divides by zero in a trial (or a `heisen check`) that sold nothing.

    A single ratio expression hides its numerator and denominator, so a phase cannot pool
    them (total oversold over total checkouts); it reports the mean of the per-trial
    values, which is that pooled figure when the trials send the same load, with a
    Student-t 95% interval over the trials (`heisen._stats.mean_with_interval`): the trials
    are independent replications, each from the scenario's setup.
    """
    values = []
    for outcome in outcomes:
        verdict = next((v for v in outcome.verdicts if v.name == name), None)
        severity = verdict.severity if verdict is not None and verdict.violated else None
        values.append(severity if severity is not None else 0.0)
    return values


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.name, finding)
    return list(seen.values())
