"""contain on this machine: restart replicas under CPU/memory limits, re-run the trials, read cpu.stat.

Each limited service's replicas are restarted through `SystemHandle.set_resources`
(a cgroup per replica, so the kernel's CFS quota applies; `250m` is 25 ms of
CPU per 100 ms period). Where no cgroup is writable the replicas run under
the SIGSTOP/SIGCONT duty cycle instead, with a warning, unless `strict: true`
asks for an error. Throttling is read from the cumulative counters around
every trial (the difference is that trial's), and summed over replicas.

At the end the services are restarted under the resources they had before
the phase, so a later phase (chaos) sees the system the pipeline describes.
When the phase fails with an exception this is not done: the runner stops
the whole system right after, which removes the cgroups too.
"""

from __future__ import annotations

import dataclasses
import time

from heisen import events
from heisen.contain._escalate import escalate, escalates, naming_condition, summary_note
from heisen.contain._limits import BackendRun, describe, effective_limits, summary_text
from heisen.errors import SystemUnavailable, UsageError
from heisen.outputs import ContainOutputs, Throttled
from heisen.phase import PhaseContext
from heisen.schema import ContainSection, PhaseName, Resources
from heisen.stress import Conditions, phase_sweep, run_trials, sweep_bursts
from heisen.system_protocol import CpuThrottling, Replicas


def run_local(ctx: PhaseContext, section: ContainSection) -> BackendRun:
    system = ctx.system
    if system is None:
        raise SystemUnavailable("contain needs the system under test running on this machine")
    limits = effective_limits(ctx.pipeline, section.resources)
    escalated = escalate(ctx, section, limits) if escalates(ctx, section, limits) else None
    if escalated is not None:
        limits = escalated.limits
    _check_limitable(ctx, limits)
    warning = _fallback_warning(ctx, section, limits)
    original: dict[str, Resources] = {}
    for name, resources in limits.items():
        original[name] = system.resources_of(name)
        ctx.emit(
            events.Progress("contain", f"restarting {name} under {summary_text({name: resources})}")
        )
        system.set_resources(name, resources)
    replica_sets = {name: system.replicas(name) for name in limits}
    meter = _ThrottleMeter(replica_sets, ctx.emit)
    started = time.monotonic()
    result = run_trials(
        dataclasses.replace(ctx, emit=meter),
        Conditions.of_section("contain", section, ctx.options),
    )
    wall_s = time.monotonic() - started
    total = meter.total()
    sweep = phase_sweep(ctx, section)
    load = list(section.load or ctx.pipeline.scenario.load)
    measured = sweep_bursts(ctx, PhaseName.CONTAIN, sweep, load) if sweep else None
    extras = _measurements(replica_sets, total, meter.cpu_used_s(), wall_s)
    for entry, throttled in zip(result.outputs.get("per_trial", []), meter.per_trial, strict=False):
        entry["throttled"] = _throttled(throttled).to_manifest()
    for name, resources in original.items():
        ctx.emit(events.Progress("contain", f"restoring {name} to its own resources"))
        system.set_resources(name, resources)
    notes = []
    if warning is not None:
        extras.warning = warning
        notes.append("duty cycle, not cgroups")
    notes += _throttling_notes(limits, total)
    if escalated is not None:
        extras.escalation = escalated.record
        notes.append(summary_note(escalated.record))
        result.findings = naming_condition(result.findings, escalated.record)
    by_service = {name: describe(resources).to_manifest() for name, resources in limits.items()}
    found = {"sweep": measured.to_manifest()} if measured is not None else {}
    return BackendRun(result, {"limits": by_service, **extras.to_manifest(), **found}, notes)


def _check_limitable(ctx: PhaseContext, limits: dict[str, Resources]) -> None:
    if not limits:
        raise UsageError(
            "contain has no limits to apply: give phases.contain.resources.<service> "
            "(e.g. {cpu: 250m, memory: 256Mi}) or services.<service>.resources"
        )
    for name in limits:
        if ctx.pipeline.services[name].url is not None:
            raise UsageError(
                f"services.{name} is already running at a url: heisen cannot restart it under limits; "
                f"remove its limits from phases.contain.resources or let heisen start it with command:"
            )


def _fallback_warning(
    ctx: PhaseContext, section: ContainSection, limits: dict[str, Resources]
) -> str | None:
    assert ctx.system is not None
    reason = ctx.system.cgroups_unavailable_reason()
    if reason is None:
        return None
    if section.strict:
        raise SystemUnavailable(
            f"phases.contain.strict is true and CPU/memory limits cannot be enforced with cgroups: {reason}"
        )
    memory_note = (
        "; memory limits are not enforced"
        if any(r.memory is not None for r in limits.values())
        else ""
    )
    message = (
        f"no writable cgroup ({reason}): CPU limits are approximated with a SIGSTOP/SIGCONT duty cycle"
        f"{memory_note}. Set phases.contain.strict: true to make this an error."
    )
    ctx.emit(events.Warning("contain", message))
    return message


class _ThrottleMeter:
    """An event sink that records the throttling counters' growth between trials, then passes events on."""

    def __init__(self, replica_sets: dict[str, Replicas], emit: events.EventSink) -> None:
        self._sets = replica_sets
        self._emit = emit
        self._start = self.read()
        self._last = self._start
        self._cpu_start = self.cpu_s()
        self.per_trial: list[CpuThrottling] = []

    def cpu_s(self) -> float:
        return float(sum(replicas.cpu_usage_s() for replicas in self._sets.values()))

    def cpu_used_s(self) -> float:
        return self.cpu_s() - self._cpu_start

    def read(self) -> CpuThrottling:
        total = CpuThrottling()
        for replicas in self._sets.values():
            total = total + (replicas.throttling() or CpuThrottling())
        return total

    def total(self) -> CpuThrottling:
        """Over the trials, up to the last one's end: the sum of `per_trial`."""
        return _minus(self._last, self._start)

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.TrialFinished) and event.phase == "contain":
            now = self.read()
            self.per_trial.append(_minus(now, self._last))
            self._last = now
        self._emit(event)


def _minus(later: CpuThrottling, earlier: CpuThrottling) -> CpuThrottling:
    return CpuThrottling(
        later.periods - earlier.periods,
        later.throttled_periods - earlier.throttled_periods,
        max(0.0, later.throttled_s - earlier.throttled_s),
    )


def _throttled(throttling: CpuThrottling) -> Throttled:
    return Throttled(
        periods=throttling.periods,
        throttled_periods=throttling.throttled_periods,
        throttled_s=round(throttling.throttled_s, 4),
    )


def _measurements(
    replica_sets: dict[str, Replicas], total: CpuThrottling, cpu_used_s: float, wall_s: float
) -> ContainOutputs:
    """What this backend measured, in the order the manifest has always listed it."""
    mechanisms = {name: replicas.enforcement.mechanism for name, replicas in replica_sets.items()}
    distinct = sorted(set(mechanisms.values()))
    return ContainOutputs(
        throttled=_throttled(total),
        enforcement=distinct[0] if len(distinct) == 1 else mechanisms,
        cpu_used_s=round(cpu_used_s, 3),
        wall_s=round(wall_s, 3),
    )


def _throttling_notes(limits: dict[str, Resources], total: CpuThrottling) -> list[str]:
    if not any(r.cpu is not None for r in limits.values()):
        return ["memory limits only: no CPU throttling to expect"]
    if total.throttled_periods == 0:
        return [
            "CPU limits were set but never throttled the replicas (0 throttled periods): under this load the "
            "limits did nothing, so this run says nothing about CPU starvation; raise the load or lower cpu"
        ]
    share = total.throttled_periods / total.periods if total.periods else 0.0
    return [
        f"throttled in {total.throttled_periods}/{total.periods} periods ({share:.0%}), "
        f"{total.throttled_s:.2f}s held"
    ]
