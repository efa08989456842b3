"""The predict phase: simulate the architecture, rank the hotspots, optionally calibrated on a run.

Calibration (`--calibrate RUN_DIR`) reads what an earlier run measured and
scales every step latency of the model by one factor: the observed p50 of
the stress load over the model's p50 of the top hotspot's operation (the
sum of its step medians), clamped to [0.1, 10]. It then predicts again at
each load the earlier run's phases used, and sets predicted and observed
violation rates side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from heisen import outputs
from heisen.manifest import PhaseStatus, RunManifest
from heisen.phase import PhaseContext, PhaseResult
from heisen.predict._architecture import load_architecture, load_incidents
from heisen.predict._calibrate import quantile
from heisen.predict._model import Architecture, Incident
from heisen.predict._predict import predict
from heisen.seeds import derive

MEASURED_PHASES = ("stress", "isolate", "contain", "chaos")


def run(ctx: PhaseContext) -> PhaseResult:
    section = ctx.pipeline.phases.predict
    assert section is not None, "the runner skips predict when the pipeline has no section"
    architecture = load_architecture(ctx.loaded.resolve(section.architecture))
    incidents = load_incidents(ctx.loaded.resolve(section.incidents)) if section.incidents else ()
    agents = int(ctx.options.get("agents") or section.agents)
    cycles = int(ctx.options.get("cycles") or section.cycles)
    seed = derive(ctx.seed, "predict")
    overrides: dict[str, float] = {}
    calibration: outputs.Calibration | None = None
    if ctx.options.get("calibrate"):
        earlier = RunManifest.load(Path(str(ctx.options["calibrate"])))
        base = predict(architecture, incidents, agents=agents, cycles=min(cycles, 500), seed=seed)
        scale = latency_scale(
            architecture, base.hotspots[0].operation if base.hotspots else None, earlier
        )
        overrides["latency_scale"] = scale
        calibration = outputs.Calibration(
            run=str(ctx.options["calibrate"]),
            latency_scale=scale,
            compared=compare(architecture, incidents, earlier, overrides, cycles, seed),
        )
    prediction = predict(
        architecture,
        incidents,
        agents=agents,
        cycles=cycles,
        seed=seed,
        overrides=overrides or None,
    )
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
    return PhaseResult(PhaseStatus.PASSED, summary, result.to_manifest())


def operation_p50_ms(architecture: Architecture, operation_id: str | None) -> float | None:
    operation = architecture.operations.get(operation_id or "")
    if operation is None:
        return None
    return sum(quantile(step.latency, "p50") * 1e3 for step in operation.steps)


def latency_scale(
    architecture: Architecture, operation_id: str | None, earlier: RunManifest
) -> float:
    observed = earlier.phases.get("stress") or earlier.phases.get("isolate")
    p50 = outputs.LoadFigures.from_manifest(observed.outputs).latency_ms.p50 if observed else None
    modelled = operation_p50_ms(architecture, operation_id)
    if not p50 or not modelled:
        return 1.0
    return round(min(10.0, max(0.1, float(p50) / modelled)), 4)


def compare(
    architecture: Architecture,
    incidents: Iterable[Incident],
    earlier: RunManifest,
    overrides: Mapping[str, float],
    cycles: int,
    seed: int,
) -> list[outputs.CalibrationPoint]:
    """Predicted vs observed violation rates at the load each measured phase used."""
    rows = []
    for name in MEASURED_PHASES:
        record = earlier.phases.get(name)
        if record is None:
            continue
        measured = outputs.LoadFigures.from_manifest(record.outputs)
        if "violation_rate" not in measured.model_fields_set or not measured.trials:
            continue
        load = max(1, measured.requests // measured.trials)
        prediction = predict(
            architecture,
            incidents,
            agents=load,
            cycles=min(cycles, 2000),
            seed=seed,
            overrides=overrides,
        )
        predicted = (
            round(prediction.hotspots[0].predicted_violation_rate, 6)
            if prediction.hotspots
            else 0.0
        )
        observed = float(measured.violation_rate)
        ratio = (predicted / observed) if observed else None
        rows.append(
            outputs.CalibrationPoint(
                phase=name,
                load=load,
                predicted=round(predicted, 4),
                observed=observed,
                ratio=round(ratio, 3) if ratio is not None else None,
            )
        )
    return rows
