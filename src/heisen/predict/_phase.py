"""The predict phase: simulate the architecture, rank the hotspots, and calibrate on a run.

Calibration refits the model on what stress measured and predicts the
ladder's target at the loads stress ran, beside the observed rates (see
`heisen.predict._calibration`). It happens twice over: `heisen predict
--calibrate RUN_DIR` reads an earlier run (and ranks the hotspots on the
refitted step latencies), and inside `heisen run` the runner calls
`calibrate_from` once stress has finished, which writes predict's
`calibration` and summary into the same manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from heisen import outputs
from heisen._serialised import JsonObject
from heisen.errors import UsageError
from heisen.manifest import PhaseStatus, RunManifest
from heisen.phase import PhaseContext, PhaseResult
from heisen.predict._architecture import load_architecture, load_incidents
from heisen.predict._calibration import calibration_of, calibration_words
from heisen.predict._model import Architecture
from heisen.predict._observed import run_observed
from heisen.predict._observed_calibration import observed_calibration
from heisen.predict._predict import predict
from heisen.schema import LoadedPipeline, LoadStep
from heisen.seeds import derive

CALIBRATION_CYCLES = 2000  # cycles per calibrated point: a rate to within about 1%


def run(ctx: PhaseContext) -> PhaseResult:
    section = ctx.pipeline.phases.predict
    assert section is not None, "the runner skips predict when the pipeline has no section"
    if section.observes or ctx.options.get("observe"):
        if ctx.options.get("calibrate"):
            raise UsageError(
                "--calibrate refits an architecture model; observe mode has none "
                "(give phases.predict.architecture, or leave out --calibrate)"
            )
        return run_observed(ctx, section)
    assert section.architecture is not None, "a section without architecture observes"
    architecture = load_architecture(ctx.loaded.resolve(section.architecture))
    incidents = load_incidents(ctx.loaded.resolve(section.incidents)) if section.incidents else ()
    agents = int(ctx.options.get("agents") or section.agents)
    cycles = int(ctx.options.get("cycles") or section.cycles)
    seed = derive(ctx.seed, "predict")
    calibration: outputs.Calibration | None = None
    if ctx.options.get("calibrate"):
        earlier = RunManifest.load(Path(str(ctx.options["calibrate"])))
        base = predict(architecture, incidents, agents=agents, cycles=min(cycles, 500), seed=seed)
        calibration, architecture = calibrate(
            architecture,
            earlier,
            ctx.loaded,
            hotspot=base.as_outputs().hotspots[0] if base.hotspots else None,
            cycles=min(cycles, CALIBRATION_CYCLES),
            seed=seed,
            run=str(ctx.options["calibrate"]),
        )
    prediction = predict(architecture, incidents, agents=agents, cycles=cycles, seed=seed)
    result = prediction.as_outputs()
    if calibration is not None:
        result.calibration = calibration
    top = result.hotspots[0] if result.hotspots else None
    if top is None:
        summary = f"no hotspot predicted at {agents} concurrent requests over {cycles} cycles"
    else:
        summary = (
            f"top hotspot {top.boundary} {top.anomaly} in {top.operation}: "
            f"{top.predicted_violation_rate * 100:.1f}% of cycles at {agents} requests "
            f"(score {top.score:.0f}, {len(result.hotspots)} hotspot(s))"
        )
    if calibration is not None:
        summary += calibration_words(calibration)
    return PhaseResult(PhaseStatus.PASSED, summary, result.to_manifest())


def calibrate(
    architecture: Architecture,
    earlier: RunManifest,
    loaded: LoadedPipeline,
    *,
    hotspot: outputs.Hotspot | None,
    cycles: int,
    seed: int,
    run: str,
) -> tuple[outputs.Calibration, Architecture]:
    """predict's calibration on `earlier`'s stress, and the architecture refitted on it."""
    record = earlier.phases.get("stress")
    stress = (
        outputs.StressOutputs.from_manifest(record.outputs)
        if record is not None and record.outputs
        else None
    )
    section = loaded.pipeline.phases.stress
    spec = section.sweep if section is not None else None
    sizes = spec.sizes() if spec is not None else []
    return calibration_of(
        architecture,
        stress,
        target=loaded.pipeline.ladder_target([hotspot.to_manifest()] if hotspot else []),
        sizes=sizes,
        hotspot=hotspot,
        cycles=cycles,
        seed=seed,
        run=run,
        sweep_spread_s=spec.spread if spec is not None else None,
        main_during_s=_during_s(section.load or loaded.pipeline.scenario.load)
        if section is not None
        else None,
    )


def calibrate_from(manifest: RunManifest, loaded: LoadedPipeline, *, seed: int) -> bool:
    """After stress in `heisen run`: write predict's calibration on what stress measured.

    Only when predict passed in this run and stress recorded figures; returns
    whether it changed the manifest (the runner saves it then).
    """
    section = loaded.pipeline.phases.predict
    record = manifest.phases.get("predict")
    stress = manifest.phases.get("stress")
    if section is None or record is None or record.status is not PhaseStatus.PASSED:
        return False
    if record.outputs.get("mode") == "observe":
        calibration = _observed_calibration(manifest, loaded, record.outputs)
        record.outputs["calibration"] = calibration.to_manifest()
        record.summary = _uncalibrated(record.summary or "") + calibration_words(calibration)
        return True
    assert section.architecture is not None, "predict without architecture observes"
    if stress is None or not stress.outputs:
        return False
    architecture = load_architecture(loaded.resolve(section.architecture))
    earlier = outputs.PredictOutputs.from_manifest(record.outputs)
    calibration, _ = calibrate(
        architecture,
        manifest,
        loaded,
        hotspot=earlier.hotspots[0] if earlier.hotspots else None,
        cycles=min(section.cycles, CALIBRATION_CYCLES),
        seed=derive(seed, "predict"),
        run=manifest.run.id,
    )
    record.outputs["calibration"] = calibration.to_manifest()
    words = calibration_words(calibration)
    record.summary = _uncalibrated(record.summary or "") + words
    return True


def _observed_calibration(
    manifest: RunManifest, loaded: LoadedPipeline, predicted: JsonObject
) -> outputs.Calibration:
    pipeline = loaded.pipeline
    record = manifest.phases.get("stress")
    stress = (
        outputs.StressOutputs.from_manifest(record.outputs)
        if record is not None and record.outputs
        else None
    )
    section = pipeline.phases.stress
    spec = section.sweep if section is not None else None
    earlier = outputs.PredictOutputs.from_manifest(predicted)

    def race_of(hotspot: outputs.Hotspot) -> str | None:
        request = pipeline.request_at(hotspot.endpoint.to_manifest() if hotspot.endpoint else None)
        return pipeline.invariant_counting(request) if request is not None else None

    return observed_calibration(
        earlier,
        stress,
        target=pipeline.ladder_target(predicted.get("hotspots") or []),
        race_of=race_of,
        sizes=spec.sizes() if spec is not None else [],
        run=manifest.run.id,
    )


def _uncalibrated(summary: str) -> str:
    """The summary without the words an earlier calibration added (a resumed run calibrates again)."""
    for marker in ("; calibrated on ", "; not calibrated: "):
        summary = summary.split(marker)[0]
    return summary


def _during_s(load: Sequence[LoadStep]) -> float | None:
    """How long a load without a burst sends for (None: it has a burst, timed by its spread)."""
    if any(step.burst is not None for step in load):
        return None
    models = (step.inject or step.ramp_inject or step.constant for step in load)
    return sum(model.during for model in models if model is not None) or None
