"""Where chaos makes its faults: the one place `phases.chaos.backend` is read.

`local` (the default): on what heisen started itself, through the System
(`LocalInjector`). `kubernetes`: on the pods of a namespace, through the
cluster's API and its chaos engine (`KubeInjector`; the kubernetes client is
imported only then). The runner runs such a chaos phase in heisen's agent,
inside the cluster, on the system it started there: the injector then uses
that system's API access (the agent's service account).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from heisen.chaos._experiments import LocalInjector
from heisen.chaos._faults import Faults
from heisen.chaos._rounds import Injector
from heisen.chaos._timeline import Timeline
from heisen.errors import SystemUnavailable
from heisen.phase import PhaseContext
from heisen.schema import ChaosSection

Backend = Literal["local", "kubernetes"]
MakeInjector = Callable[[PhaseContext, ChaosSection, Faults, Timeline], Injector]


def _local(
    ctx: PhaseContext, section: ChaosSection, faults: Faults, timeline: Timeline
) -> Injector:
    if ctx.system is None:
        raise SystemUnavailable("chaos needs a running system")
    return LocalInjector(ctx.system, faults, timeline, ctx.run_dir / "logs")


def _kubernetes(
    ctx: PhaseContext, section: ChaosSection, faults: Faults, timeline: Timeline
) -> Injector:
    from heisen.chaos._kubernetes import KubeInjector
    from heisen.system import KubeSystem

    if isinstance(ctx.system, KubeSystem):  # in the agent, on the system heisen started there
        return KubeInjector(section, faults, timeline, backend=ctx.system.backend)
    contain = ctx.pipeline.phases.contain
    kubeconfig = contain.kubeconfig if contain is not None else None
    return KubeInjector(
        section,
        faults,
        timeline,
        # relative to the pipeline's folder, as contain reads it, not to where heisen runs
        kubeconfig=str(ctx.loaded.resolve(kubeconfig)) if kubeconfig else None,
        context=contain.context if contain is not None else None,
    )


INJECTORS: Mapping[Backend, MakeInjector] = {"local": _local, "kubernetes": _kubernetes}


def injector(
    ctx: PhaseContext, section: ChaosSection, faults: Faults, timeline: Timeline
) -> Injector:
    """The injector of the section's `backend:`."""
    backend: Backend = section.backend
    return INJECTORS[backend](ctx, section, faults, timeline)
