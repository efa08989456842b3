"""The stress phase: reproduce the race with targeted load and measure how often it happens.

Order: resolve the target (the scenario's load, or retargeted at predict's
hotspot), optionally sweep the burst size up to the smallest load that
reproduces the race, run the trials, then hold the results to the section's
thresholds. A violated invariant or a breached threshold fails the phase;
trials without either are inconclusive when they could not have shown the
race (`vacuity`), and pass otherwise.
"""

from __future__ import annotations

from typing import Any

from heisen._schema._system import Burst, LoadStep
from heisen._thresholds import parse_threshold
from heisen.errors import UsageError
from heisen.manifest import PhaseStatus
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.pipeline import StressSection
from heisen.stress._targets import hotspot_request
from heisen.stress._trials import Conditions, run_trials, vacuity


def run(ctx: PhaseContext) -> PhaseResult:
    section: StressSection = ctx.pipeline.phases.stress
    load = list(section.load or ctx.pipeline.scenario.load)
    outputs: dict[str, Any] = {}
    target_note = ""
    rank = int(ctx.options.get("hotspot") or section.hotspot)
    if section.target == "hotspot" or ctx.options.get("hotspot"):
        name, hotspot = hotspot_request(ctx, rank)
        load = [_retarget(step, name) for step in load]
        outputs["target"] = {"hotspot": rank, "boundary": hotspot.get("boundary"), "request": name}
        target_note = f" on hotspot #{rank} {hotspot.get('boundary')} ({hotspot.get('anomaly')})"
    if section.sweep is not None:
        outputs["sweep"] = _sweep(ctx, section, load)
    result = run_trials(
        ctx,
        Conditions.of_section("stress", section, ctx.options, load=load, workers=section.workers),
    )
    outputs = {**result.outputs, **outputs}
    checked = [(text, parse_threshold(text)) for text in section.thresholds]
    outputs["thresholds"] = [
        {"threshold": text, "held": t.holds(outputs), "observed": round(t.observed(outputs), 3)}
        for text, t in checked
    ]
    breached = [_breach_message(item) for item in outputs["thresholds"] if not item["held"]]
    findings = list(result.findings) + [
        Finding("stress", "threshold", message) for message in breached
    ]
    failed = outputs["violations"] > 0 or bool(breached)
    p99 = outputs.get("latency_ms", {}).get("p99", 0.0)
    summary = (
        f"{outputs['violations']}/{outputs['trials']} trials violated an invariant{target_note} "
        f"({outputs['requests']} requests, p99 {p99:.1f} ms)"
    )
    if "sweep" in outputs and outputs["sweep"]["smallest_reproducing_load"]:
        summary += f"; reproduced from a burst of {outputs['sweep']['smallest_reproducing_load']['requests']}"
    if breached:
        summary += "; " + "; ".join(breached)
    reason = None if failed else vacuity(outputs)
    if reason:
        return PhaseResult.inconclusive(reason, outputs, result.artifacts)
    status = PhaseStatus.FAILED if failed else PhaseStatus.PASSED
    return PhaseResult(status, summary, outputs, result.artifacts, findings=findings)


def _breach_message(item: dict[str, Any]) -> str:
    return f"threshold '{item['threshold']}' breached (observed {item['observed']:g})"


def _retarget(step: LoadStep, request: str) -> LoadStep:
    if step.kind == "pause":
        return step
    model = getattr(step, step.kind)
    return step.model_copy(
        update={step.kind: model.model_copy(update={"request": request, "mix": None})}
    )


def _sweep(ctx: PhaseContext, section: StressSection, load: list[LoadStep]) -> dict[str, Any]:
    """Grow the first burst geometrically until the race reproduces; record the smallest load that did.

    Terminates: the size grows by at least one each round and stops at `sweep.max`.
    """
    sweep = section.sweep
    assert sweep is not None
    where = next((i for i, step in enumerate(load) if step.burst is not None), None)
    if where is None:
        raise UsageError(
            "phases.stress.sweep grows a burst, but the load has no burst: step; add one "
            "or remove sweep:"
        )
    burst = load[where].burst
    assert burst is not None
    size = min(sweep.start or _predicted_start(ctx) or max(1, burst.requests // 8), sweep.max)
    tried: list[dict[str, Any]] = []
    smallest: dict[str, Any] | None = None
    while size <= sweep.max:
        stepped = list(load)
        stepped[where] = LoadStep(burst=Burst(requests=size, request=burst.request, mix=burst.mix))
        result = run_trials(
            ctx,
            Conditions(
                label="stress-sweep", trials=sweep.trials, load=stepped, stop="first-violation"
            ),
        )
        outcome = result.outputs
        tried.append(
            {"requests": size, "trials": outcome["trials"], "violations": outcome["violations"]}
        )
        if outcome["violations"]:
            smallest = {"requests": size, "violation_rate": outcome["violation_rate"]}
            break
        size = max(size + 1, int(size * sweep.factor))
    return {"tried": tried, "smallest_reproducing_load": smallest}


def _predicted_start(ctx: PhaseContext) -> int | None:
    value = ctx.outputs_of("predict").get("smallest_reproducing_load")
    if isinstance(value, dict):
        value = value.get("requests")
    return int(value) if value else None
