"""predict: a seeded agent-swarm simulation of the architecture that ranks where races will happen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heisen.predict._architecture import load_architecture, load_incidents

if TYPE_CHECKING:
    from heisen.phase import PhaseContext, PhaseResult

__all__ = ["load_architecture", "load_incidents", "run"]


def run(ctx: PhaseContext) -> PhaseResult:
    """Run the predict phase (see `heisen.predict._phase`); imported on use, so `validate` stays light."""
    from heisen.predict._phase import run as run_phase

    return run_phase(ctx)
