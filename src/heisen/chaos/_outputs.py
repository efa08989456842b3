"""The chaos phase's manifest outputs and verdicts.

Verdicts follow LitmusChaos: an experiment is `Pass` when all its rounds
were injected, the Continuous/OnChaos probes evaluated while its faults were
active held within their tolerance, and the steady state after and every
invariant held; `Fail` when one of those did not (or the experiment raised);
`Awaited` when it did not complete (interrupted, or rounds beyond the load).

Trials: one chaos run is one trial of the scenario (its invariants are judged
once, over every record), so `trials` is 1 and `violations` is 1 when an
invariant (data loss included) was violated.
"""

from __future__ import annotations

from heisen._stats import rate_with_interval
from heisen.chaos._rounds import ChaosVerdict, ExperimentRecord
from heisen.chaos._steady_state import SteadyState
from heisen.oracle import Verdict
from heisen.outputs import (
    ChaosOutputs,
    DataLoss,
    ExperimentOutcome,
    InvariantVerdict,
    TimelineEntry,
)
from heisen.stress import RequestRecord, summarize


def experiment_verdict(
    record: ExperimentRecord, state: SteadyState, after_ok: bool
) -> ChaosVerdict:
    if record.error is not None:
        return ChaosVerdict.FAIL
    if len(record.rounds) < record.planned or record.planned == 0:
        return ChaosVerdict.AWAITED
    if state.failed_during(record.windows) or not after_ok:
        return ChaosVerdict.FAIL
    return ChaosVerdict.PASS


def overall_verdict(
    violated: bool, windows: list[ChaosVerdict], experiments: list[ChaosVerdict]
) -> ChaosVerdict:
    """The run's: Fail when anything failed, else Awaited when an experiment did not complete."""
    if violated or ChaosVerdict.FAIL in windows or ChaosVerdict.FAIL in experiments:
        return ChaosVerdict.FAIL
    if ChaosVerdict.AWAITED in experiments:
        return ChaosVerdict.AWAITED
    return ChaosVerdict.PASS


def requests_during(
    records: list[RequestRecord], windows: list[tuple[float, float]], started_s: float
) -> int:
    """Requests in flight (written, not yet answered) at some moment of these windows (t_s)."""
    spans = [(int((started_s + a) * 1e9), int((started_s + b) * 1e9)) for a, b in windows]
    return sum(
        1
        for r in records
        if r.sent_ns is not None and any(r.sent_ns <= b and r.end_ns >= a for a, b in spans)
    )


def outputs(
    records: list[RequestRecord],
    schedule_records: list[ExperimentRecord],
    state: SteadyState,
    verdicts: list[Verdict],
    loss: DataLoss,
    timeline: list[TimelineEntry],
    started_s: float,
) -> ChaosOutputs:
    """The phase's outputs, typed (`to_manifest()` gives the manifest's mapping)."""
    violated = any(v.violated for v in verdicts)
    windows = state.verdicts()
    after_ok = windows["after"] is ChaosVerdict.PASS and not violated
    experiments: list[ExperimentOutcome] = []
    judged = []
    for record in schedule_records:
        verdict = experiment_verdict(record, state, after_ok)
        judged.append(verdict)
        entry = ExperimentOutcome(
            name=record.experiment.name,
            kind=record.experiment.kind,
            injected=record.injected(),
            verdict=verdict.value,
            requests_in_flight=requests_during(records, record.windows, started_s),
        )
        if record.error:
            entry.error = record.error
        experiments.append(entry)
    overall = overall_verdict(violated, list(windows.values()), judged)
    out = ChaosOutputs.from_manifest(
        {**rate_with_interval(1 if violated else 0, 1), **summarize(records).to_dict()}
    )
    out.verdict = overall.value
    out.experiments = experiments
    out.steady_state = state.summary()
    out.data_loss = loss.model_copy()
    out.invariants = [InvariantVerdict.from_manifest(v.to_dict()) for v in verdicts]
    out.timeline = list(timeline)
    return out
