"""Calibrate observe mode on a run: the hit rates predicted per burst size against the sweep's.

Observe mode has no model to refit: its prediction is the hit rate of the
observed windows at each of the sweep's burst sizes (`burst_rates` of the
hotspot that is the target's race), and stress's sweep measured the same
sizes. The points, the within-2x judgement and the smallest reproducing
burst follow `heisen.predict._calibration`; stress's main load is not a
point (observe mode predicts bursts only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from heisen import outputs
from heisen._serialised import JsonObject
from heisen.predict._calibration import (
    Measured,
    Point,
    geometric_ratio,
    miss_reason,
    smallest_burst,
)


def observed_calibration(
    predicted: outputs.PredictOutputs,
    stress: outputs.StressOutputs | None,
    *,
    target: str | None,
    race_of: Callable[[outputs.Hotspot], str | None],
    sizes: Sequence[int],
    run: str,
) -> outputs.Calibration:
    """predict's `calibration` in observe mode; `race_of` names the invariant a hotspot is about."""

    def missing(reason: str) -> outputs.Calibration:
        return outputs.Calibration(
            run=run, target=target, points=[], within_2x=False, reason=reason
        )

    if target is None:
        return missing("the pipeline has no invariant to calibrate on")
    hotspot = next((h for h in predicted.hotspots if race_of(h) == target), None)
    if hotspot is None:
        return missing(f"no unguarded hotspot observed is the race {target} checks")
    if stress is None or stress.sweep is None:
        return missing("stress ran no burst sweep to compare the predicted burst sizes with")
    measured = Measured.from_stress(
        stress, target, sizes or [s.requests for s in stress.sweep.tried]
    )
    rates = {int(size): float(rate) for size, rate in hotspot.burst_rates.items()}
    points = [
        Point(observed, rates[observed.load])
        for observed in measured.points
        if observed.source == "sweep" and observed.load in rates
    ]
    if not points:
        return missing(f"the sweep recorded no rate of {target} at a predicted burst size")
    ratio = geometric_ratio(points)
    smallest, near = smallest_burst(measured, rates)
    data: JsonObject = {
        "run": run,
        "target": target,
        "points": [p.to_output().to_manifest() for p in points],
        "ratio": round(ratio, 3) if ratio is not None else None,
        "within_2x": all(p.within_2x for p in points),
        "smallest_reproducing_burst": {
            "predicted": smallest,
            "observed": measured.smallest_observed,
            "within_one_step": near,
            "sizes": list(measured.sizes),
        },
    }
    if not data["within_2x"]:
        data["reason"] = miss_reason(points)
    return outputs.Calibration.from_manifest(data)
