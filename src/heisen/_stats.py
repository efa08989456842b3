"""Small statistics every phase reports the same way."""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval for a proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate_with_interval(violations: int, trials: int) -> dict[str, object]:
    lo, hi = wilson_interval(violations, trials)
    return {
        "trials": trials,
        "violations": violations,
        "violation_rate": (violations / trials) if trials else 0.0,
        "ci95": [round(lo, 4), round(hi, 4)],
    }


def amplification(rate: float, baseline_outputs: dict[str, object]) -> dict[str, object]:
    """How a phase's violation rate compares with stress's (the baseline), when stress measured one."""
    baseline = baseline_outputs.get("violation_rate")
    if not isinstance(baseline, int | float):
        return {"baseline": None, "factor": None}
    factor = (rate / baseline) if baseline else None
    return {
        "baseline": baseline,
        "rate": rate,
        "factor": round(factor, 3) if factor is not None else None,
    }
