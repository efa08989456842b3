"""The isolate phase: widen the race window with stubs and link toxics, then re-run the scenario."""

from __future__ import annotations

from typing import Any

from heisen import events
from heisen._stats import amplification
from heisen._thresholds import breached
from heisen.errors import UsageError
from heisen.manifest import PhaseStatus
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.pipeline import IsolateSection
from heisen.stress import Conditions, run_trials


def run(ctx: PhaseContext) -> PhaseResult:
    section: IsolateSection = ctx.pipeline.phases.isolate
    system = ctx.system
    assert system is not None, "the runner starts the system before isolate"
    stubs: dict[str, str] = {}
    applied: list[dict[str, Any]] = []
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
        for index, toxic in enumerate(section.toxics):
            spec = {
                "name": f"isolate-{index}-{toxic.type}",
                "type": toxic.type,
                "stream": toxic.stream,
                "toxicity": toxic.toxicity,
                "attributes": dict(toxic.attributes),
            }
            system.add_toxic(toxic.link, spec)
            applied.append({"link": toxic.link, **spec})
            ctx.emit(events.Progress("isolate", f"{toxic.type} on {toxic.link} ({toxic.stream})"))
        result = run_trials(
            ctx,
            Conditions(
                label="isolate", trials=section.trials, load=section.load, stop=section.stop
            ),
        )
    finally:
        system.reset_faults()
        for name in stubs:
            system.stop_stub(name)
    outputs = dict(result.outputs)
    outputs["stubs"] = stubs
    outputs["toxics"] = applied
    outputs["amplification"] = amplification(outputs["violation_rate"], ctx.outputs_of("stress"))
    messages = breached(section.thresholds, outputs)
    findings = list(result.findings) + [Finding("isolate", "threshold", m) for m in messages]
    status = PhaseStatus.FAILED if outputs["violations"] or messages else PhaseStatus.PASSED
    summary = f"{outputs['violations']}/{outputs['trials']} trials violated an invariant"
    factor = outputs["amplification"].get("factor")
    if factor is not None:
        summary += f", {factor:.1f}x stress's rate"
    summary += f" with {len(stubs)} stub(s) and {len(applied)} toxic(s)"
    if messages:
        summary += "; " + "; ".join(messages)
    return PhaseResult(status, summary, outputs, result.artifacts, findings=findings)
