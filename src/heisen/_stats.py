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


# Student's t, 97.5th percentile, by degrees of freedom (1-30); past 30, a series in 1/df.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """The 97.5th percentile of Student's t with `df` degrees of freedom (within 0.001)."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)


def mean_with_interval(values: list[float]) -> dict[str, object]:
    """The mean of per-trial values with its Student-t 95% interval: `{mean, ci95, trials}`.

    Trials are independent replications (each starts from the scenario's setup), so
    their values are independent draws and the t interval, mean ± t(0.975, n-1)·s/√n,
    is the standard interval for their mean; it is approximate when the values are
    skewed (most trials 0, a few large). The low end is cut at 0 when no value is
    negative (the mean then cannot be). `ci95` is None below 2 trials (no spread to
    measure) and has zero width when every trial gave the same value.
    """
    n = len(values)
    if n == 0:
        return {"mean": None, "ci95": None, "trials": 0}
    mean = sum(values) / n
    if n < 2:
        return {"mean": round(mean, 6), "ci95": None, "trials": n}
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = t975(n - 1) * math.sqrt(variance / n)
    low = mean - half
    if min(values) >= 0:
        low = max(0.0, low)
    return {"mean": round(mean, 6), "ci95": [round(low, 6), round(mean + half, 6)], "trials": n}
