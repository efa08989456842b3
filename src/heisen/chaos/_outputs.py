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

from typing import Any

from heisen._stats import rate_with_interval
from heisen.chaos._experiments import ExperimentRecord
from heisen.chaos._steady_state import SteadyState
from heisen.stress._latency import summarize
from heisen.stress._records import RequestRecord


def experiment_verdict(record: ExperimentRecord, state: SteadyState, after_ok: bool) -> str:
    if record.error is not None:
        return "Fail"
    if len(record.rounds) < record.planned or record.planned == 0:
        return "Awaited"
    if state.failed_during(record.windows) or not after_ok:
        return "Fail"
    return "Pass"


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
    verdicts: list[dict[str, Any]],
    loss: dict[str, Any],
    timeline: list[dict[str, Any]],
    started_s: float,
) -> dict[str, Any]:
    violated = any(v["held"] is False for v in verdicts)
    steady = state.summary()
    after_ok = steady["after"]["verdict"] == "Pass" and not violated
    experiments = []
    for record in schedule_records:
        entry: dict[str, Any] = {
            "name": record.experiment.name,
            "kind": record.experiment.kind,
            "injected": record.injected(),
            "verdict": experiment_verdict(record, state, after_ok),
            "requests_in_flight": requests_during(records, record.windows, started_s),
        }
        if record.error:
            entry["error"] = record.error
        experiments.append(entry)
    overall = (
        "Fail"
        if violated
        or any(steady[w]["verdict"] == "Fail" for w in steady)
        or any(e["verdict"] == "Fail" for e in experiments)
        else "Awaited"
        if any(e["verdict"] == "Awaited" for e in experiments)
        else "Pass"
    )
    return {
        **rate_with_interval(1 if violated else 0, 1),
        **summarize(records).to_dict(),
        "verdict": overall,
        "experiments": experiments,
        "steady_state": steady,
        "data_loss": loss,
        "invariants": verdicts,
        "timeline": timeline,
    }
