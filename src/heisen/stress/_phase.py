"""The stress phase: reproduce the race with targeted load and measure how often it happens."""

from __future__ import annotations


from typing import Any

from heisen._schema._system import Burst, LoadStep
from heisen._thresholds import breached
from heisen.errors import UsageError
from heisen.manifest import PhaseStatus
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.pipeline import StressSection
from heisen.stress._targets import hotspot_request
from heisen.stress._trials import Conditions, run_trials


def run(ctx: PhaseContext) -> PhaseResult:
    section: StressSection = ctx.pipeline.phases.stress
    load = list(section.load or ctx.pipeline.scenario.load)
    target_note = ""
    hotspot_index = int(ctx.options.get("hotspot") or section.hotspot)
    if section.target == "hotspot" or ctx.options.get("hotspot"):
        name, hotspot = hotspot_request(ctx, hotspot_index)
        load = [_retarget(step, name) for step in load]
        target_note = f" on hotspot #{hotspot_index} {hotspot.get('boundary')} ({hotspot.get('anomaly')})"
    outputs: dict[str, Any] = {}
    if section.sweep is not None:
        outputs["sweep"] = _sweep(ctx, section, load)
    result = run_trials(ctx, Conditions(label="stress", trials=section.trials, load=load, stop=section.stop))
    outputs = {**result.outputs, **outputs}
    messages = breached(section.thresholds, outputs)
    outputs["thresholds"] = [{"threshold": t, "held": not any(t in m for m in messages)} for t in section.thresholds]
    findings = list(result.findings)
    findings += [Finding("stress", "threshold", message) for message in messages]
    violated = outputs["violations"] > 0
    status = PhaseStatus.FAILED if violated or messages else PhaseStatus.PASSED
    summary = (f"{outputs['violations']}/{outputs['trials']} trials violated an invariant{target_note} "
               f"({outputs['requests']} requests, p99 {outputs.get('latency_ms', {}).get('p99', 0):.1f} ms)")
    if messages:
        summary += "; " + "; ".join(messages)
    return PhaseResult(status, summary, outputs, result.artifacts, findings=findings)


def _retarget(step: LoadStep, request: str) -> LoadStep:
    model = getattr(step, step.kind)
    if step.kind == "pause":
        return step
    return step.model_copy(update={step.kind: model.model_copy(update={"request": request, "mix": None})})


def _sweep(ctx: PhaseContext, section: StressSection, load: list[LoadStep]) -> dict[str, Any]:
    """Grow the burst until the race reproduces; record the smallest load that did."""
    sweep = section.sweep
    assert sweep is not None
    burst_steps = [i for i, step in enumerate(load) if step.kind == "burst"]
    if not burst_steps:
        raise UsageError("phases.stress.sweep grows a burst: the load has no burst step")
    where = burst_steps[0]
    burst = load[where].burst
    assert burst is not None
    size = sweep.start or _predicted_start(ctx) or max(1, burst.requests // 8)
    tried = []
    smallest = None
    while size <= sweep.max:
        stepped = list(load)
        stepped[where] = LoadStep(burst=Burst(requests=size, request=burst.request, mix=burst.mix))
        result = run_trials(ctx, Conditions(label="stress-sweep", trials=sweep.trials, load=stepped,
                                            stop="first-violation"))
        tried.append({"requests": size, "trials": result.outputs["trials"],
                      "violations": result.outputs["violations"]})
        if result.outputs["violations"]:
            smallest = size
            break
        size = max(size + 1, int(size * sweep.factor))
    return {"tried": tried, "smallest_reproducing_load": smallest}


def _predicted_start(ctx: PhaseContext) -> int | None:
    value = ctx.outputs_of("predict").get("smallest_reproducing_load")
    if isinstance(value, dict):
        value = value.get("requests")
    return int(value) if value else None



