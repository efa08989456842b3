"""The stress phase: reproduce the race with targeted load and measure how often it happens.

Order: resolve the target (the scenario's load, or retargeted at predict's
hotspot), optionally sweep the burst size up to the smallest load that
reproduces the race, run the trials, then hold the results to the section's
thresholds. A violated invariant or a breached threshold fails the phase;
trials without either are inconclusive when they could not have shown the
race (`vacuity`), and pass otherwise.
"""

from __future__ import annotations

from heisen._thresholds import parse_threshold
from heisen.errors import UsageError
from heisen.manifest import PhaseStatus
from heisen.outputs import (
    RateFigures,
    SmallestLoad,
    StressOutputs,
    StressTarget,
    Sweep,
    SweepStep,
    ThresholdCheck,
)
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.schema import Burst, LoadStep, StressSection
from heisen.stress._targets import hotspot_request
from heisen.stress._trials import Conditions, run_trials, vacuity


def run(ctx: PhaseContext) -> PhaseResult:
    section = ctx.pipeline.phases.stress
    assert section is not None  # the runner runs a phase only when the pipeline has its section
    load = list(section.load or ctx.pipeline.scenario.load)
    target: StressTarget | None = None
    target_note = ""
    rank = int(ctx.options.get("hotspot") or section.hotspot)
    if section.target == "hotspot" or ctx.options.get("hotspot"):
        name, hotspot = hotspot_request(ctx, rank)
        load = [_retarget(step, name) for step in load]
        target = StressTarget(hotspot=rank, boundary=hotspot.get("boundary"), request=name)
        target_note = f" on hotspot #{rank} {hotspot.get('boundary')} ({hotspot.get('anomaly')})"
    sweep = _sweep(ctx, section, load) if section.sweep is not None else None
    result = run_trials(
        ctx,
        Conditions.of_section("stress", section, ctx.options, load=load, workers=section.workers),
    )
    out = StressOutputs.from_manifest(result.outputs)
    if target is not None:
        out.target = target
    if sweep is not None:
        out.sweep = sweep
    figures = out.to_manifest()
    out.thresholds = [
        ThresholdCheck(
            threshold=text, held=t.holds(figures), observed=round(t.observed(figures), 3)
        )
        for text, t in ((text, parse_threshold(text)) for text in section.thresholds)
    ]
    breached = [_breach_message(item) for item in out.thresholds if not item.held]
    findings = list(result.findings) + [
        Finding("stress", "threshold", message) for message in breached
    ]
    failed = out.violations > 0 or bool(breached)
    summary = (
        f"{out.violations}/{out.trials} trials violated an invariant{target_note} "
        f"({out.requests} requests, p99 {out.latency_ms.p99:.1f} ms)"
    )
    smallest = out.sweep.smallest_reproducing_load if out.sweep is not None else None
    if smallest is not None:
        summary += f"; reproduced from a burst of {smallest.requests}"
    if breached:
        summary += "; " + "; ".join(breached)
    reason = None if failed else vacuity(out.to_manifest())
    if reason:
        return PhaseResult.inconclusive(reason, out.to_manifest(), result.artifacts)
    status = PhaseStatus.FAILED if failed else PhaseStatus.PASSED
    return PhaseResult(status, summary, out.to_manifest(), result.artifacts, findings=findings)


def _breach_message(item: ThresholdCheck) -> str:
    return f"threshold '{item.threshold}' breached (observed {item.observed:g})"


def _retarget(step: LoadStep, request: str) -> LoadStep:
    if step.kind == "pause":
        return step
    model = getattr(step, step.kind)
    return step.model_copy(
        update={step.kind: model.model_copy(update={"request": request, "mix": None})}
    )


def _sweep(ctx: PhaseContext, section: StressSection, load: list[LoadStep]) -> Sweep:
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
    tried: list[SweepStep] = []
    smallest: SmallestLoad | None = None
    while size <= sweep.max:
        stepped = list(load)
        stepped[where] = LoadStep(burst=Burst(requests=size, request=burst.request, mix=burst.mix))
        result = run_trials(
            ctx,
            Conditions(
                label="stress-sweep", trials=sweep.trials, load=stepped, stop="first-violation"
            ),
        )
        outcome = RateFigures.from_manifest(result.outputs)
        tried.append(SweepStep(requests=size, trials=outcome.trials, violations=outcome.violations))
        if outcome.violations:
            smallest = SmallestLoad(requests=size, violation_rate=outcome.violation_rate)
            break
        size = max(size + 1, int(size * sweep.factor))
    return Sweep(tried=tried, smallest_reproducing_load=smallest)


def _predicted_start(ctx: PhaseContext) -> int | None:
    value = ctx.outputs_of("predict").get("smallest_reproducing_load")
    if isinstance(value, dict):
        value = value.get("requests")
    return int(value) if value else None
