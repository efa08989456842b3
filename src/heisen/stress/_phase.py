"""The stress phase: reproduce the race with targeted load and measure how often it happens.

Order: resolve the target (the scenario's load, or retargeted at predict's
hotspot), run the trials, optionally sweep the burst size up to the smallest
that reproduces the ladder's target (`_sweep.py`), then hold the results to the
section's thresholds. A violated invariant or a breached threshold fails the phase;
trials without either are inconclusive when they could not have shown the
race (`vacuity`), and pass otherwise. Around the trials it reads each link's
round trips from its proxy: `link_latency_ms` (links that carried none left out).
"""

from __future__ import annotations

from heisen._thresholds import parse_threshold
from heisen.manifest import PhaseStatus
from heisen.outputs import LinkLatency, StressOutputs, StressTarget, ThresholdCheck
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.schema import LoadStep, PhaseName
from heisen.stress._sweep import sweep_bursts, sweep_words
from heisen.stress._targets import hotspot_request
from heisen.stress._trials import Conditions, run_trials, vacuity
from heisen.system_protocol import LatencyHistogram


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
    links_before = _round_trips(ctx)
    result = run_trials(
        ctx,
        Conditions.of_section("stress", section, ctx.options, load=load, workers=section.workers),
    )
    link_latency = _link_latency(ctx, links_before)
    sweep = sweep_bursts(ctx, PhaseName.STRESS, section.sweep, load) if section.sweep else None
    out = StressOutputs.from_manifest(result.outputs)
    if target is not None:
        out.target = target
    if sweep is not None:
        out.sweep = sweep
    if link_latency:
        out.link_latency_ms = link_latency
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
    summary += sweep_words(out.sweep)
    if breached:
        summary += "; " + "; ".join(breached)
    reason = None if failed else vacuity(out.to_manifest())
    if reason:
        return PhaseResult.inconclusive(reason, out.to_manifest(), result.artifacts)
    status = PhaseStatus.FAILED if failed else PhaseStatus.PASSED
    return PhaseResult(status, summary, out.to_manifest(), result.artifacts, findings=findings)


def _round_trips(ctx: PhaseContext) -> dict[str, LatencyHistogram]:
    """Each link's round-trip histogram so far, as its proxy measured it."""
    system = ctx.system
    if system is None:
        return {}
    return {link: system.link_traffic(link).round_trips for link in system.links()}


def _link_latency(ctx: PhaseContext, before: dict[str, LatencyHistogram]) -> dict[str, LinkLatency]:
    """Percentiles of the round trips each link carried since `before` (links with none left out)."""
    latency: dict[str, LinkLatency] = {}
    for link, now in _round_trips(ctx).items():
        trips = now - before.get(link, LatencyHistogram())
        p50, p90, p99 = (trips.percentile_ms(q) for q in (0.5, 0.9, 0.99))
        if p50 is None or p90 is None or p99 is None:
            continue
        latency[link] = LinkLatency(
            p50=round(p50, 4), p90=round(p90, 4), p99=round(p99, 4), count=trips.count
        )
    return latency


def _breach_message(item: ThresholdCheck) -> str:
    return f"threshold '{item.threshold}' breached (observed {item.observed:g})"


def _retarget(step: LoadStep, request: str) -> LoadStep:
    if step.kind == "pause":
        return step
    model = getattr(step, step.kind)
    return step.model_copy(
        update={step.kind: model.model_copy(update={"request": request, "mix": None})}
    )
