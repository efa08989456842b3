"""predict: a seeded agent-swarm simulation of the architecture that ranks where races will happen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heisen.predict._architecture import load_architecture, load_incidents

if TYPE_CHECKING:
    from collections.abc import Mapping

    from heisen.manifest import RunManifest
    from heisen.phase import PhaseContext, PhaseResult
    from heisen.schema import LoadedPipeline, Pipeline

__all__ = ["calibrate_from", "load_architecture", "load_incidents", "needs_system", "run"]


def needs_system(pipeline: Pipeline, options: Mapping[str, object]) -> bool:
    """Whether predict observes the running system (no architecture, `observe:`, `--observe`)."""
    section = pipeline.phases.predict
    return section is not None and (section.observes or bool(options.get("observe")))


def calibrate_from(manifest: RunManifest, loaded: LoadedPipeline, *, seed: int) -> bool:
    """After stress in `heisen run`: predict's calibration on what stress measured, written into
    `manifest` (see `heisen.predict._phase.calibrate_from`); True when it changed the manifest."""
    from heisen.predict._phase import calibrate_from as calibrate

    return calibrate(manifest, loaded, seed=seed)


def run(ctx: PhaseContext) -> PhaseResult:
    """Run the predict phase (see `heisen.predict._phase`); imported on use, so `validate` stays light."""
    from heisen.predict._phase import run as run_phase

    return run_phase(ctx)
