"""The isolate phase: widen the race window with stubs and link toxics, then re-run the scenario."""

from __future__ import annotations

from heisen import events, outputs
from heisen._stats import amplification
from heisen._thresholds import breached
from heisen.errors import UsageError
from heisen.isolate._escalate import escalate, naming_condition, summary_note
from heisen.ladder import same_race_factor
from heisen.manifest import PhaseStatus, plain
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.schema import PhaseName, Toxic
from heisen.stress import Conditions, phase_sweep, run_trials, sweep_bursts, sweep_words, vacuity
from heisen.system import LinkTraffic, median_delay_ms


def run(ctx: PhaseContext) -> PhaseResult:
    section = ctx.pipeline.phases.isolate
    assert section is not None, "the runner skips isolate when the pipeline has no section"
    system = ctx.system
    assert system is not None, "the runner starts the system before isolate"
    stubs: dict[str, str] = {}
    applied: list[outputs.AppliedToxic] = []
    try:
        for name in section.stubs:
            owner = ctx.pipeline.dependencies.get(name)
            if owner is None or owner.stub is None:
                raise UsageError(
                    f"phases.isolate.stubs: {name!r} is not a dependency with a stub: root"
                )
            stubs[name] = system.start_stub(name, ctx.loaded.resolve(owner.stub))
            ctx.emit(
                events.Progress("isolate", f"{name} now answered by its stub at {stubs[name]}")
            )
        escalated = None if section.toxics else escalate(ctx, section)
        toxics = escalated.toxics if escalated is not None else section.toxics
        for index, toxic in enumerate(toxics):
            added = outputs.AppliedToxic(
                link=toxic.link,
                name=f"isolate-{index}-{toxic.type}",
                type=toxic.type,
                stream=toxic.stream,
                toxicity=toxic.toxicity,
                attributes=plain(dict(toxic.attributes)),
            )
            system.add_toxic(toxic.link, added.to_manifest(exclude={"link"}))
            applied.append(added)
            ctx.emit(events.Progress("isolate", f"{toxic.type} on {toxic.link} ({toxic.stream})"))
        traffic_before = {toxic.link: system.link_traffic(toxic.link) for toxic in toxics}
        result = run_trials(
            ctx,
            Conditions.of_section("isolate", section, ctx.options),
        )
        traffic = {
            link: system.link_traffic(link) - before for link, before in traffic_before.items()
        }
        spec = phase_sweep(ctx, section)
        load = list(section.load or ctx.pipeline.scenario.load)
        sweep = sweep_bursts(ctx, PhaseName.ISOLATE, spec, load) if spec else None
        answered = {name: _stub_requests(url) for name, url in stubs.items()}
    finally:
        system.reset_faults()
        for name in stubs:
            system.stop_stub(name)
    out = outputs.IsolateOutputs.from_manifest(result.outputs)
    out.stubs = stubs
    out.toxics = applied
    out.amplification = outputs.Amplification.model_validate(
        amplification(out.violation_rate, ctx.outputs_of("stress"))
    )
    messages = breached(section.thresholds, out.to_manifest())
    findings = list(result.findings) + [Finding("isolate", "threshold", m) for m in messages]
    out.link_bytes = {link: counters.bytes for link, counters in traffic.items()}
    out.toxic_delay_ms = {
        link: _round(counters.mean_toxic_delay_ms) for link, counters in traffic.items()
    }
    out.stub_requests = answered
    out.sweep = sweep
    if escalated is not None:
        out.escalation = escalated.record
        findings = naming_condition(findings, escalated.record)
    failed = bool(out.violations or messages)
    reason = None if failed else _vacuity(out, toxics, traffic, answered)
    if reason:
        return PhaseResult.inconclusive(reason, out.to_manifest(), result.artifacts)
    status = PhaseStatus.FAILED if failed else PhaseStatus.PASSED
    summary = f"{out.violations}/{out.trials} trials violated an invariant"
    target = ctx.ladder_target()
    factor = same_race_factor(out.to_manifest(), ctx.outputs_of("stress"), target)
    if factor is not None:
        summary += f", {factor:.1f}x stress's {target} rate"
    summary += f" with {len(stubs)} stub(s) and {len(applied)} toxic(s)"
    if escalated is not None:
        summary += "; " + summary_note(escalated.record)
    summary += sweep_words(sweep, {"stress": ctx.outputs_of("stress")})
    if messages:
        summary += "; " + "; ".join(messages)
    return PhaseResult(status, summary, out.to_manifest(), result.artifacts, findings=findings)


def _stub_requests(url: str) -> int:
    """How many requests the stub's journal holds: a stub nobody called widened nothing."""
    from heisen.oracle.probes import ProbeError, http_probe

    try:
        answer = http_probe(url, "GET", "/__admin/requests?limit=1")
    except ProbeError:
        return 0
    body = answer["body"]
    return int(body.get("meta", {}).get("total", 0)) if isinstance(body, dict) else 0


def _vacuity(
    out: outputs.IsolateOutputs,
    toxics: list[Toxic],
    traffic: dict[str, LinkTraffic],
    answered: dict[str, int],
) -> str | None:
    """Why isolate's trials could not show the wider window: a fault that never acted, or the
    scenario's own reasons (`vacuity`)."""
    idle_links = [link for link, counters in traffic.items() if counters.bytes <= 0]
    if idle_links:
        return (
            f"no traffic crossed {', '.join(idle_links)} during the trials: its toxic never acted"
        )
    for toxic in toxics:
        wanted = median_delay_ms(toxic.attributes) if toxic.type == "latency" else None
        seen = traffic[toxic.link].mean_toxic_delay_ms
        if wanted and (seen is None or seen < wanted / 2):
            shown = "none" if seen is None else f"{seen:.2f} ms"
            return (
                f"the latency toxic on {toxic.link} ({toxic.stream}) added {shown} per chunk on "
                f"average, under half its median of {wanted:g} ms: the window was not widened"
            )
    silent = [name for name, count in answered.items() if count == 0]
    if silent:
        return f"the stub for {', '.join(silent)} answered no request during the trials"
    return vacuity(out.to_manifest())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
