"""Refit step latencies from measured percentiles, so prediction and measurement share one model.

`observed` maps a boundary (`inventory → redis`, `inventory -> payments`) or a
bare resource/service name (`redis`: every service's steps on it) to latency
percentiles in milliseconds, e.g. `{"p50": 0.4, "p90": 0.9, "p99": 2.1}`. Each
matching step becomes `lognormal(median=p50, sigma)`, with sigma from the
ratio of the upper percentile to the median:

    sigma = ln(p90 / p50) / 1.2816      (z of the 90th percentile)
    sigma = ln(p99 / p50) / 2.3263      (when p90 is missing)

and the old sigma is kept when only p50 is known. `predicted_latencies`
gives the same percentiles from the model, for a side-by-side table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from heisen.errors import UsageError
from heisen.predict._architecture import normalize_boundary
from heisen.predict._model import Architecture, Latency, Step, StepKind
from heisen.predict._swarm import QUANTILES, quantile_table

Z = {"p50": 0.0, "p90": 1.2815515655446004, "p99": 2.3263478740408408}
_LATENCY_STEPS = (StepKind.READ, StepKind.WRITE, StepKind.CALL, StepKind.LOCK, StepKind.UNLOCK)


def calibrate(
    architecture: Architecture, observed: Mapping[str, Mapping[str, float]]
) -> Architecture:
    """A copy of `architecture` whose measured boundaries have lognormal latencies fitted to `observed`."""
    fits: dict[str, Latency] = {}
    problems: list[str] = []
    known = _boundaries(architecture)
    names = {boundary.split(" → ")[1] for boundary in known}
    for raw, percentiles in observed.items():
        key = normalize_boundary(raw)
        if key not in known and key not in names:
            problems.append(
                f"{raw!r} is neither a boundary ({', '.join(sorted(known))}) nor a resource"
            )
            continue
        try:
            fits[key] = _fit(percentiles, None)
        except ValueError as exc:
            problems.append(f"{raw!r}: {exc}")
    if problems:
        raise UsageError(
            "cannot calibrate from the measured latencies:\n  " + "\n  ".join(problems)
        )

    def refit(service: str, step: Step) -> Step:
        if step.kind not in _LATENCY_STEPS or step.target is None:
            return step
        percentiles = observed_for(service, step.target)
        if percentiles is None:
            return step
        return replace(step, latency=_fit(percentiles, step.latency))

    def observed_for(service: str, target: str) -> Mapping[str, float] | None:
        for raw, percentiles in observed.items():
            if normalize_boundary(raw) == f"{service} → {target}":
                return percentiles
        for raw, percentiles in observed.items():
            if normalize_boundary(raw) == target:
                return percentiles
        return None

    operations = {
        op_id: replace(op, steps=tuple(refit(op.service, step) for step in op.steps))
        for op_id, op in architecture.operations.items()
    }
    return replace(architecture, operations=operations)


def _boundaries(architecture: Architecture) -> set[str]:
    return {
        f"{op.service} → {step.target}"
        for op in architecture.operations.values()
        for step in op.steps
        if step.kind in _LATENCY_STEPS and step.target is not None
    }


def _fit(percentiles: Mapping[str, float], previous: Latency | None) -> Latency:
    unknown = set(percentiles) - {"p50", "p90", "p99", "max", "mean", "p75", "p95", "p999"}
    if unknown:
        raise ValueError(f"unknown percentile(s) {', '.join(sorted(unknown))}")
    if "p50" not in percentiles:
        raise ValueError("p50 is required")
    median = float(percentiles["p50"]) / 1e3
    if not median > 0:
        raise ValueError("p50 must be more than 0 ms")
    sigma = previous.b if previous is not None and previous.kind == "lognormal" else 0.0
    for name in ("p90", "p99"):
        if name in percentiles:
            upper = float(percentiles[name]) / 1e3
            if upper < median:
                raise ValueError(f"{name} ({upper * 1e3:g} ms) is below p50 ({median * 1e3:g} ms)")
            sigma = math.log(upper / median) / Z[name]
            break
    return Latency("lognormal", median, sigma)


def predicted_latencies(architecture: Architecture) -> dict[str, dict[str, float]]:
    """p50/p90/p99 in ms of each boundary's first step latency in the model, to set beside measurements."""
    table: dict[str, dict[str, float]] = {}
    for op in architecture.operations.values():
        for step in op.steps:
            if step.kind not in _LATENCY_STEPS or step.target is None:
                continue
            boundary = f"{op.service} → {step.target}"
            if boundary not in table:
                table[boundary] = {name: round(quantile(step.latency, name) * 1e3, 4) for name in Z}
    return table


def quantile(latency: Latency, name: str) -> float:
    if latency.kind == "fixed":
        return latency.a
    if latency.kind == "lognormal":
        return latency.a * math.exp(latency.b * Z[name])
    fraction = {"p50": 0.5, "p90": 0.9, "p99": 0.99}[name]
    return float(quantile_table(latency, 1.0)[min(int(fraction * QUANTILES), QUANTILES - 1)])
