"""The manifest's `ladder:`: one race (the target invariant) followed through the load phases.

Each load phase (stress, isolate, contain, chaos) that ran gives one step,
read from its outputs for the target invariant only: stress, isolate and
contain from `per_invariant.<target>`, chaos (one run of load under faults)
from its `invariants:` verdicts (violated: 1 of 1, held: 0 of 1). A phase
that errored or was inconclusive measured no rate: its step has nulls, as
has one that did not check the target (`invariants:` of its section).
`smallest_reproducing_burst` comes from the phase's burst sweep, when it
checked the target (`heisen.stress.sweep_bursts`). `condition` is what escalation found
reproduces the race when the pipeline did not say (`escalation.reproduced_with` of isolate
and contain: `a->b +100 ms`, `svc cpu=250m`). `amplification` divides a step's rate by the previous step's that has one,
always on the same invariant: never one race's rate over another's.

`build_ladder` is pure (manifest in, `Ladder` out); the runner calls it
before each save, so the ladder follows the phases as they finish.
`same_race_factor` is the same comparison for one phase against stress,
which isolate's and contain's summaries state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heisen._stats import rate_with_interval
from heisen.manifest import Ladder, LadderStep, PhaseStatus, RunManifest
from heisen.schema import LOAD_PHASES

__all__ = ["build_ladder", "same_race_factor"]

_RAN = (PhaseStatus.PASSED, PhaseStatus.FAILED, PhaseStatus.INCONCLUSIVE, PhaseStatus.ERROR)
_UNMEASURED = (PhaseStatus.INCONCLUSIVE, PhaseStatus.ERROR)


def build_ladder(manifest: RunManifest, target: str) -> Ladder | None:
    """The target's ladder over the load phases that ran so far (None before the first)."""
    steps: list[LadderStep] = []
    previous: float | None = None
    for phase in LOAD_PHASES:
        record = manifest.phases.get(phase.value)
        if record is None or PhaseStatus(record.status) not in _RAN:
            continue
        step = _step(phase.value, record.outputs or {}, target)
        if PhaseStatus(record.status) in _UNMEASURED:
            step = LadderStep(phase=phase.value)
        rate = step.violation_rate
        if rate is not None:
            if previous:
                step.amplification = round(rate / previous, 3)
            previous = rate
        steps.append(step)
    return Ladder(target=target, steps=steps) if steps else None


def _step(phase: str, outputs: Mapping[str, Any], target: str) -> LadderStep:
    figures = (outputs.get("per_invariant") or {}).get(target)
    if figures is None:
        figures = _from_verdicts(outputs.get("invariants") or [], target)
    condition = (outputs.get("escalation") or {}).get("reproduced_with")
    smallest = _smallest_burst(outputs.get("sweep"), target)
    if not figures or figures.get("violation_rate") is None:
        return LadderStep(phase=phase, condition=condition, smallest_reproducing_burst=smallest)
    interval = figures.get("ci95")
    return LadderStep(
        phase=phase,
        violation_rate=float(figures["violation_rate"]),
        ci95=(float(interval[0]), float(interval[1])) if interval else None,
        per_operation_rate=figures.get("per_operation_rate"),
        smallest_reproducing_burst=smallest,
        condition=condition,
    )


def _smallest_burst(sweep: Mapping[str, Any] | None, target: str) -> int | None:
    """The sweep's smallest reproducing burst, when the sweep checked the target."""
    if not sweep or sweep.get("target") != target:
        return None
    smallest = sweep.get("smallest_reproducing_load") or {}
    requests = smallest.get("requests")
    return int(requests) if requests else None


def _from_verdicts(verdicts: list[Mapping[str, Any]], target: str) -> dict[str, Any] | None:
    """A rate of one from one verdict (chaos judges its invariants once, after its load)."""
    verdict = next((v for v in verdicts if v.get("name") == target), None)
    if verdict is None or verdict.get("held") is None:
        return None
    return rate_with_interval(0 if verdict["held"] else 1, 1)


def same_race_factor(
    outputs: Mapping[str, Any], baseline: Mapping[str, Any], target: str | None
) -> float | None:
    """The target invariant's rate in `outputs` over its rate in `baseline` (None when either
    has no figure for it, or the baseline's is 0): a phase's summary compares one race only."""
    if target is None:
        return None
    rates = [
        ((figures.get("per_invariant") or {}).get(target) or {}).get("violation_rate")
        for figures in (outputs, baseline)
    ]
    rate, before = rates
    if not isinstance(rate, int | float) or not isinstance(before, int | float) or not before:
        return None
    return round(rate / before, 3)
