"""What-if changes to an architecture for one prediction: another mix, window, replicas, CPU, latency.

mix: {inventory.checkout_fixed: 0.8, inventory.view_event: 0.2}   replaces workload.mix
window: 20ms                                                       burst window
per_s: 500                                                         rate arrivals
latency_scale: 2.0                                                 every step's I/O latency
replicas: {inventory: 1}
cpu: {inventory: 500m}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heisen.errors import UsageError
from heisen.predict._architecture import replace_operations
from heisen.predict._architecture_spec import Cores, Duration
from heisen.predict._model import Architecture, Latency


class _OverridesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mix: dict[str, float] | None = None
    window: Duration | None = None
    per_s: float | None = Field(default=None, gt=0)
    latency_scale: float | None = Field(default=None, gt=0, le=1000)
    replicas: dict[str, int] | None = None
    cpu: dict[str, Cores] | None = None


def apply_overrides(
    architecture: Architecture, overrides: Mapping[str, Any] | None
) -> Architecture:
    """A copy of `architecture` with the overrides applied; `UsageError` names every bad one."""
    if not overrides:
        return architecture
    try:
        spec = _OverridesSpec.model_validate(dict(overrides))
    except ValidationError as exc:
        lines = [
            f"overrides.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        raise UsageError("invalid predict overrides:\n  " + "\n  ".join(lines)) from exc
    problems: list[str] = []
    workload = architecture.workload
    if spec.mix is not None:
        problems += [
            f"overrides.mix: unknown operation {op!r}"
            for op in spec.mix
            if op not in architecture.operations
        ]
        if sum(max(w, 0.0) for w in spec.mix.values()) <= 0:
            problems.append("overrides.mix: at least one operation needs a weight above 0")
        workload = replace(workload, mix=dict(spec.mix))
    arrivals = workload.arrivals
    if spec.window is not None:
        if arrivals.kind != "burst":
            problems.append("overrides.window: the workload's arrivals are a rate, not a burst")
        arrivals = replace(arrivals, window_s=spec.window)
    if spec.per_s is not None:
        if arrivals.kind != "rate":
            problems.append("overrides.per_s: the workload's arrivals are a burst, not a rate")
        arrivals = replace(arrivals, per_s=spec.per_s)
    services = dict(architecture.services)
    for name, count in (spec.replicas or {}).items():
        if name not in services or count < 1:
            problems.append(f"overrides.replicas.{name}: unknown service or fewer than 1 replica")
            continue
        services[name] = replace(services[name], replicas=count)
    for name, cores in (spec.cpu or {}).items():
        if name not in services:
            problems.append(f"overrides.cpu.{name}: unknown service")
            continue
        services[name] = replace(services[name], cpu=cores)
    if problems:
        raise UsageError("invalid predict overrides:\n  " + "\n  ".join(problems))
    changed = replace(
        architecture, services=services, workload=replace(workload, arrivals=arrivals)
    )
    if spec.latency_scale is not None:
        scale = spec.latency_scale
        changed = replace_operations(
            changed,
            lambda op: replace(
                op,
                steps=tuple(
                    replace(step, latency=_scaled(step.latency, scale)) for step in op.steps
                ),
            ),
        )
    return changed


def _scaled(latency: Latency, scale: float) -> Latency:
    if latency.kind == "lognormal":
        return replace(latency, a=latency.a * scale)
    return replace(latency, a=latency.a * scale, b=latency.b * scale)
