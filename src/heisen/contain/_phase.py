"""The contain phase: re-run the scenario with the services under CPU/memory limits.

Two backends answer the same question. `local` (the default) restarts the
replicas on this machine under cgroup limits (`_local.py`); `kubernetes`
applies Deployments with `resources.limits` to a cluster and loads them there
(`_kubernetes.py`). Both give back the trials' figures plus what they
measured; this module adds the comparison with stress, the thresholds and
the summary.
"""

from __future__ import annotations

from typing import Any

from heisen._stats import amplification
from heisen._thresholds import breached
from heisen.contain._limits import BackendRun
from heisen.manifest import PhaseStatus
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.pipeline import ContainSection, Pipeline
from heisen.stress import vacuity


def needs_system(pipeline: Pipeline) -> bool:
    """Whether contain runs against the local system (False: it brings up its own in a cluster)."""
    section = pipeline.phases.contain
    return section is None or section.backend == "local"


def run(ctx: PhaseContext) -> PhaseResult:
    section: ContainSection = ctx.pipeline.phases.contain
    if section.backend == "kubernetes":
        from heisen.contain._kubernetes import run_kubernetes

        measured = run_kubernetes(ctx, section)
    else:
        from heisen.contain._local import run_local

        measured = run_local(ctx, section)
    return _result(ctx, section, measured)


def _result(ctx: PhaseContext, section: ContainSection, measured: BackendRun) -> PhaseResult:
    outputs: dict[str, Any] = {**measured.result.outputs, **measured.extras}
    # The contract's `limits` is one {cpu, memory}: the first limited service's; all are kept beside it.
    outputs["limits_by_service"] = outputs.pop("limits", {})
    outputs["limits"] = next(
        iter(outputs["limits_by_service"].values()), {"cpu": None, "memory": None}
    )
    outputs["amplification"] = amplification(outputs["violation_rate"], ctx.outputs_of("stress"))
    stress_p99 = ctx.outputs_of("stress").get("latency_ms", {}).get("p99")
    if stress_p99 is not None:
        outputs["amplification"]["p99_ms"] = {
            "baseline": stress_p99,
            "contain": outputs.get("latency_ms", {}).get("p99"),
        }
    messages = breached(section.thresholds, outputs)
    outputs["thresholds"] = [
        {"threshold": t, "held": not any(t in m for m in messages)} for t in section.thresholds
    ]
    findings = list(measured.result.findings) + [
        Finding("contain", "threshold", m) for m in messages
    ]
    failed = bool(outputs["violations"] or messages)
    reason = None if failed else _vacuity(outputs)
    if reason:
        return PhaseResult.inconclusive(reason, outputs, measured.result.artifacts)
    status = PhaseStatus.FAILED if failed else PhaseStatus.PASSED
    summary = _summary(outputs, measured.notes + messages)
    return PhaseResult(status, summary, outputs, measured.result.artifacts, findings=findings)


def _vacuity(outputs: dict[str, Any]) -> str | None:
    """Why contain's trials say nothing about CPU starvation: a limit that never acted."""
    has_cpu_limit = any(spec.get("cpu") for spec in outputs["limits_by_service"].values())
    throttled = outputs.get("throttled", {}).get("throttled_periods")
    if has_cpu_limit and throttled is None:
        return "the CPU limits' throttling could not be read, so nothing shows that they acted"
    if has_cpu_limit and throttled == 0:
        return (
            f"0 throttled CFS periods in {outputs['trials']} trials: the CPU limit never acted "
            "(raise the load or lower cpu)"
        )
    return vacuity(outputs)


def _summary(outputs: dict[str, Any], notes: list[str]) -> str:
    limits = ", ".join(
        f"{name} " + " ".join(f"{k}={v}" for k, v in spec.items() if v is not None)
        for name, spec in outputs.get("limits_by_service", {}).items()
    )
    text = (
        f"{outputs['violations']}/{outputs['trials']} trials violated an invariant under {limits}"
    )
    factor = outputs["amplification"].get("factor")
    if factor is not None:
        text += f", {factor:.1f}x stress's rate"
    p99 = outputs.get("latency_ms", {}).get("p99")
    if p99 is not None:
        text += f" (p99 {p99:.1f} ms)"
    if notes:
        text += "; " + "; ".join(notes)
    return text
