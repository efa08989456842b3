"""The contain phase: re-run the scenario with the services under CPU/memory limits.

Two backends answer the same question. `local` (the default) restarts the
replicas on this machine under cgroup limits (`_local.py`); `kubernetes`
loads the Deployments the runner applied to a cluster with
`resources.limits` (`_kubernetes.py`). Both give back the trials' figures plus what they
measured; this module adds the comparison with stress, the thresholds and
the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heisen import outputs
from heisen._stats import amplification
from heisen._thresholds import breached
from heisen.contain._limits import BackendRun
from heisen.ladder import same_race_factor
from heisen.manifest import PhaseStatus
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.schema import ContainSection, Pipeline
from heisen.stress import sweep_words, vacuity


def needs_system(pipeline: Pipeline) -> bool:
    """Whether contain runs on the local system (False: the runner gives it one in a cluster)."""
    section = pipeline.phases.contain
    return section is None or section.backend == "local"


def run(ctx: PhaseContext) -> PhaseResult:
    section = ctx.pipeline.phases.contain
    assert section is not None, "the runner skips contain when the pipeline has no section"
    if section.backend == "kubernetes":
        from heisen.contain._kubernetes import run_kubernetes

        measured = run_kubernetes(ctx, section)
    else:
        from heisen.contain._local import run_local

        measured = run_local(ctx, section)
    return _result(ctx, section, measured)


def _result(ctx: PhaseContext, section: ContainSection, measured: BackendRun) -> PhaseResult:
    merged = {**measured.result.outputs, **measured.extras}
    by_service = merged.pop("limits", {})
    out = outputs.ContainOutputs.from_manifest(merged)
    # The contract's `limits` is one {cpu, memory}: the first limited service's; all are kept beside it.
    out.limits_by_service = {
        name: outputs.Limits.model_validate(spec) for name, spec in dict(by_service).items()
    }
    first = next(iter(out.limits_by_service.values()), None)
    out.limits = first.model_copy() if first is not None else outputs.Limits(cpu=None, memory=None)
    out.amplification = outputs.Amplification.model_validate(
        amplification(out.violation_rate, ctx.outputs_of("stress"))
    )
    stress_p99 = _p99(outputs.LoadFigures.from_manifest(ctx.outputs_of("stress")))
    if stress_p99 is not None:
        out.amplification.p99_ms = outputs.P99Comparison(baseline=stress_p99, contain=_p99(out))
    messages = breached(section.thresholds, out.to_manifest())
    out.thresholds = [
        outputs.ThresholdCheck(threshold=t, held=not any(t in m for m in messages))
        for t in section.thresholds
    ]
    findings = list(measured.result.findings) + [
        Finding("contain", "threshold", m) for m in messages
    ]
    failed = bool(out.violations or messages)
    reason = None if failed else _vacuity(out)
    if reason:
        return PhaseResult.inconclusive(reason, out.to_manifest(), measured.result.artifacts)
    status = PhaseStatus.FAILED if failed else PhaseStatus.PASSED
    target = ctx.ladder_target()
    factor = same_race_factor(out.to_manifest(), ctx.outputs_of("stress"), target)
    same_race = f"{factor:.1f}x stress's {target} rate" if factor is not None else None
    earlier = {phase: ctx.outputs_of(phase) for phase in ("stress", "isolate")}
    summary = _summary(out, measured.notes + messages, same_race, earlier)
    return PhaseResult(
        status, summary, out.to_manifest(), measured.result.artifacts, findings=findings
    )


def _p99(figures: outputs.LoadFigures) -> outputs.Number | None:
    """The p99 latency the figures hold, or None when they hold none (the phase did not run)."""
    if "latency_ms" not in figures.model_fields_set:
        return None
    latency = figures.latency_ms
    return latency.p99 if "p99" in latency.model_fields_set else None


def _vacuity(out: outputs.ContainOutputs) -> str | None:
    """Why contain's trials say nothing about CPU starvation: a limit that never acted."""
    has_cpu_limit = any(spec.cpu for spec in out.limits_by_service.values())
    throttled = out.throttled.throttled_periods
    if has_cpu_limit and throttled is None:
        return "the CPU limits' throttling could not be read, so nothing shows that they acted"
    if has_cpu_limit and throttled == 0:
        return (
            f"0 throttled CFS periods in {out.trials} trials: the CPU limit never acted "
            "(raise the load or lower cpu)"
        )
    return vacuity(out.to_manifest())


def _summary(
    out: outputs.ContainOutputs,
    notes: list[str],
    same_race: str | None,
    earlier: Mapping[str, Mapping[str, Any]],
) -> str:
    limits = ", ".join(
        f"{name} " + " ".join(f"{k}={v}" for k, v in spec.to_manifest().items() if v is not None)
        for name, spec in out.limits_by_service.items()
    )
    text = f"{out.violations}/{out.trials} trials violated an invariant under {limits}"
    if same_race is not None:
        text += f", {same_race}"
    p99 = _p99(out)
    if p99 is not None:
        text += f" (p99 {p99:.1f} ms)"
    text += sweep_words(out.sweep, earlier)
    if notes:
        text += "; " + "; ".join(notes)
    return text
