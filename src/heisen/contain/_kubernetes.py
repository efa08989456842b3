"""contain on Kubernetes: the services as Deployments with `resources.limits`, loaded in the cluster.

The pipeline runs as a `KubeSystem` (heisen.system) in the section's
namespace, each service a Deployment of its `image:` with the effective
limits as requests and limits, all labelled with the run. The trials run on
it as on any System: the scenario engine reaches the services, probes and
setup reach PostgreSQL/Redis, through port-forward tunnels.

The namespace is deleted at the end on every path (success, error, Ctrl-C),
with further signals ignored while that runs.
"""

from __future__ import annotations

import dataclasses

from heisen import events
from heisen.contain._limits import BackendRun, effective_limits
from heisen.phase import PhaseContext
from heisen.schema import ContainSection
from heisen.stress import Conditions, TrialsResult, run_trials
from heisen.system import RUN_LABEL, KubeSystem, RolloutStatus, run_label


def run_kubernetes(ctx: PhaseContext, section: ContainSection) -> BackendRun:
    def progress(message: str) -> None:
        ctx.emit(events.Progress("contain", message))

    def rollout(s: RolloutStatus) -> None:
        ctx.emit(
            events.Progress(
                "contain",
                f"rollout {s.deployment}: {s.ready}/{s.desired} ready",
                s.ready,
                s.desired,
            )
        )

    kubeconfig = ctx.loaded.resolve(section.kubeconfig) if section.kubeconfig else None
    system = KubeSystem(
        ctx.loaded,
        namespace=section.namespace,
        labels={RUN_LABEL: run_label(ctx.manifest.run.id)},
        limits=effective_limits(ctx.pipeline, section.resources),
        kubeconfig=kubeconfig,
        context=section.context,
        log=progress,
        on_rollout=rollout,
    )
    try:
        result = _deploy_and_run(ctx, section, system)
    except BaseException:
        _tear_down(ctx, system, failing=True)
        raise
    _tear_down(ctx, system, failing=False)
    extras = {
        "limits": {
            s.name: {"cpu": s.cpu, "memory": s.memory} for s in system.services if s.cpu or s.memory
        },
        "throttled": {"periods": None, "throttled_periods": None, "throttled_s": None},
        "enforcement": "kubernetes",
        "namespace": section.namespace,
        "cluster": system.host,
    }
    notes = [
        "throttling not read: cpu.stat is inside the pods (kubectl exec POD -- cat /sys/fs/cgroup/cpu.stat)"
    ]
    return BackendRun(result, extras, notes)


def _deploy_and_run(ctx: PhaseContext, section: ContainSection, system: KubeSystem) -> TrialsResult:
    system.start()
    conditions = Conditions.of_section("contain", section, ctx.options)
    return run_trials(dataclasses.replace(ctx, system=system), conditions)


def _tear_down(ctx: PhaseContext, system: KubeSystem, *, failing: bool) -> None:
    for problem in system.stop():
        if not failing and problem.cause is not None:
            raise problem.cause
        what = "delete" if problem.what == f"namespace {system.namespace}" else "close"
        ctx.emit(events.Warning("contain", f"could not {what} {problem.what}: {problem.error}"))
