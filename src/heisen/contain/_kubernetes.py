"""contain on Kubernetes: the trials on the services as Deployments with `resources.limits`, in a cluster.

The runner applies the Deployments (each service's `image:` with the
effective limits, `effective_limits`, as requests and limits) and runs this
phase in heisen's agent, a pod in the same namespace: the trials reach the
services through their Services, and the probes reach PostgreSQL and Redis,
from inside the cluster. The namespace is deleted after the phase on every
path. What this backend adds is what the cluster ran them under: the CFS
throttling of each limited service's pods, read from their cgroup's cpu.stat
before and after the trials (only pods alive at both reads count: a replaced
pod's counters start again).
"""

from __future__ import annotations

from heisen.contain._limits import BackendRun
from heisen.errors import SystemUnavailable
from heisen.phase import PhaseContext
from heisen.schema import ContainSection, PhaseName
from heisen.stress import Conditions, phase_sweep, run_trials, sweep_bursts
from heisen.system import KubePods, format_cpu, format_memory
from heisen.system_protocol import CpuThrottling, System

Counters = dict[str, CpuThrottling]


def run_kubernetes(ctx: PhaseContext, section: ContainSection) -> BackendRun:
    system = ctx.system
    if system is None:
        raise SystemUnavailable("contain on Kubernetes needs the system the runner starts there")
    limited = [name for name in ctx.pipeline.services if system.resources_of(name).cpu is not None]
    before = _read_throttling(system, limited)
    result = run_trials(ctx, Conditions.of_section("contain", section, ctx.options))
    after = _read_throttling(system, limited)
    sweep = phase_sweep(ctx, section)
    load = list(section.load or ctx.pipeline.scenario.load)
    measured = sweep_bursts(ctx, PhaseName.CONTAIN, sweep, load) if sweep else None
    limits = {name: system.resources_of(name) for name in ctx.pipeline.services}
    throttled = _growth(before, after)
    extras = {
        "sweep": measured.to_manifest() if measured is not None else None,
        "limits": {
            name: {"cpu": format_cpu(r.cpu), "memory": format_memory(r.memory)}
            for name, r in limits.items()
            if r.cpu is not None or r.memory is not None
        },
        "throttled": {
            "periods": throttled.periods if throttled else None,
            "throttled_periods": throttled.throttled_periods if throttled else None,
            "throttled_s": round(throttled.throttled_s, 3) if throttled else None,
        },
        "enforcement": "kubernetes",
        "namespace": section.namespace,
        "cluster": system.describe().get("cluster"),
    }
    notes = []
    if limited and throttled is None:
        notes.append(
            "throttling not read: the pods' cpu.stat could not be read "
            "(the agent needs pods/exec in the namespace, and cat in the image)"
        )
    return BackendRun(result, extras, notes)


def _read_throttling(system: System, services: list[str]) -> dict[str, Counters] | None:
    """Each service's pods' counters, or None when any cannot be read."""
    read: dict[str, Counters] = {}
    for name in services:
        replicas = system.replicas(name)
        counters = replicas.throttling_by_pod() if isinstance(replicas, KubePods) else None
        if counters is None:
            return None
        read[name] = counters
    return read


def _growth(
    before: dict[str, Counters] | None, after: dict[str, Counters] | None
) -> CpuThrottling | None:
    if before is None or after is None:
        return None
    total = CpuThrottling()
    for name, pods in after.items():
        for pod, later in pods.items():
            earlier = before.get(name, {}).get(pod)
            if earlier is not None:
                total = total + CpuThrottling(
                    later.periods - earlier.periods,
                    later.throttled_periods - earlier.throttled_periods,
                    max(0.0, later.throttled_s - earlier.throttled_s),
                )
    return total
