"""Run a phase in the cluster: the plan in a ConfigMap, the agent in a Job, its log read back.

The runner calls `run_in_cluster` once the KubeSystem has started (objects
applied, rollout done, init Jobs finished); the namespace's deletion after
the phase takes the agent's objects with it.
"""

from __future__ import annotations

from heisen.agent._drive import collect
from heisen.agent._plan import plan_for
from heisen.events import Progress
from heisen.phase import PhaseContext, PhaseResult
from heisen.system import KubeSystem, agent_job_name, agent_objects

AGENT_START_DEADLINE_S = 300.0  # pulling the agent's image can take minutes


def run_in_cluster(system: KubeSystem, phase: str, ctx: PhaseContext) -> PhaseResult:
    """Run `phase` in the agent, a Job in `system`'s namespace; its records come through the log."""
    plan = plan_for(
        ctx.loaded,
        ctx.manifest,
        phase=phase,
        seed=ctx.seed,
        options=dict(ctx.options),
        addresses=system.addresses(),
        limits=system.limits,
        namespace=system.namespace,
        labels=system.labels,
        cluster=system.host,
        skip=ctx.run_dir,
    )
    backend = system.backend
    job = agent_job_name(phase)
    ctx.emit(Progress(phase, f"starting the load agent: job {job}, image {system.agent_image}"))
    backend.apply(
        agent_objects(system.namespace, backend.labels, phase, plan.to_json(), system.agent_image)
    )
    lines = backend.follow_job_log(job, AGENT_START_DEADLINE_S)
    return collect(
        lines, ctx.emit, ctx.run_dir, f"the agent (job {job}, image {system.agent_image})"
    )
