"""isolate: latency-injecting stubs and TCP proxy toxics that widen the race window."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heisen.phase import PhaseContext, PhaseResult

__all__ = ["run"]


def run(ctx: PhaseContext) -> PhaseResult:
    """Run the isolate phase (see `heisen.isolate._phase`); imported on use, so `validate` stays light."""
    from heisen.isolate._phase import run as run_phase

    return run_phase(ctx)
