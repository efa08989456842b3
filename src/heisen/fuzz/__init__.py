"""fuzz: edge-case payloads sent concurrently, failures shrunk and stored with the command that replays them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heisen.fuzz._openapi import OpenApiDocument, load_openapi

if TYPE_CHECKING:
    from heisen.phase import PhaseContext, PhaseResult

__all__ = ["OpenApiDocument", "load_openapi", "run"]


def run(ctx: PhaseContext) -> PhaseResult:
    """Run the fuzz phase (see `heisen.fuzz._phase`)."""
    from heisen.fuzz._phase import run as run_phase

    return run_phase(ctx)
