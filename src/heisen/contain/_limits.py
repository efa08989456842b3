"""What both contain backends share: which services get limits, how they are written, what a run gives back.

A service's effective limits are its own `resources:` with the fields that
`phases.contain.resources.<service>` gives replacing them; a service with
neither keeps running as it is. Quantities are parsed by the schema (cores,
bytes) and written back in Kubernetes' spelling (`250m`, `256Mi`) for the
manifest and for rendered objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from heisen.outputs import Limits
from heisen.schema import Pipeline, Resources
from heisen.stress import TrialsResult
from heisen.system import format_cpu, format_memory


def effective_limits(
    pipeline: Pipeline, overrides: Mapping[str, Resources]
) -> dict[str, Resources]:
    """Service name -> the limits contain runs it under, for services that have any."""
    limits: dict[str, Resources] = {}
    for name, service in pipeline.services.items():
        own = service.resources
        override = overrides.get(name)
        cpu = override.cpu if override is not None and override.cpu is not None else own.cpu
        memory = (
            override.memory if override is not None and override.memory is not None else own.memory
        )
        if cpu is not None or memory is not None:
            limits[name] = Resources(cpu=cpu, memory=memory)
    return limits


def describe(resources: Resources) -> Limits:
    """`{cpu, memory}` as the manifest records them."""
    return Limits(cpu=format_cpu(resources.cpu), memory=format_memory(resources.memory))


def summary_text(limits: Mapping[str, Resources]) -> str:
    """`counter cpu=250m memory=256Mi` for each limited service."""
    parts = []
    for name, resources in limits.items():
        fields = [
            f"{key}={value}"
            for key, value in describe(resources).to_manifest().items()
            if value is not None
        ]
        parts.append(f"{name} {' '.join(fields)}")
    return ", ".join(parts)


@dataclass(frozen=True)
class BackendRun:
    """What a backend measured: the trials, the outputs it adds, and lines for the summary.

    `extras` are keys of `heisen.outputs.ContainOutputs` as the manifest spells them, but for
    `limits`, which holds every limited service's `{cpu, memory}` (the phase moves it to
    `limits_by_service`).
    """

    result: TrialsResult
    extras: Mapping[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
