"""contain on Kubernetes: the trials on the services as Deployments with `resources.limits`, in a cluster.

The runner runs this phase on a `KubeSystem` (heisen.system) in the section's
namespace, each service a Deployment of its `image:` with the effective
limits (`effective_limits`) as requests and limits, all labelled with the
run; it deletes the namespace after the phase on every path (success, error,
Ctrl-C). Here the trials run on it as on any System: the scenario engine
reaches the services, probes and setup reach PostgreSQL/Redis, through
port-forward tunnels. What this backend adds is what the cluster ran them
under; it cannot read the throttling, which is inside the pods.
"""

from __future__ import annotations

from heisen.contain._limits import BackendRun
from heisen.errors import SystemUnavailable
from heisen.phase import PhaseContext
from heisen.schema import ContainSection, PhaseName
from heisen.stress import Conditions, phase_sweep, run_trials, sweep_bursts
from heisen.system import format_cpu, format_memory


def run_kubernetes(ctx: PhaseContext, section: ContainSection) -> BackendRun:
    system = ctx.system
    if system is None:
        raise SystemUnavailable("contain on Kubernetes needs the system the runner starts there")
    result = run_trials(ctx, Conditions.of_section("contain", section, ctx.options))
    sweep = phase_sweep(ctx, section)
    load = list(section.load or ctx.pipeline.scenario.load)
    measured = sweep_bursts(ctx, PhaseName.CONTAIN, sweep, load) if sweep else None
    limits = {name: system.resources_of(name) for name in ctx.pipeline.services}
    extras = {
        "sweep": measured.to_manifest() if measured is not None else None,
        "limits": {
            name: {"cpu": format_cpu(r.cpu), "memory": format_memory(r.memory)}
            for name, r in limits.items()
            if r.cpu is not None or r.memory is not None
        },
        "throttled": {"periods": None, "throttled_periods": None, "throttled_s": None},
        "enforcement": "kubernetes",
        "namespace": section.namespace,
        "cluster": system.describe().get("cluster"),
    }
    notes = [
        "throttling not read: cpu.stat is inside the pods (kubectl exec POD -- cat /sys/fs/cgroup/cpu.stat)"
    ]
    return BackendRun(result, extras, notes)
