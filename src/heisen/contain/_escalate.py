"""Escalation: when no service has a `cpu:` limit, find the CPU limit that reproduces the race.

With no `cpu:` in `services.<s>.resources` nor in `phases.contain.resources`, contain on
this machine tries `CPU_STEPS` (500m, then 250m, then 100m) on every service heisen
starts, each service keeping its own memory limit. Each condition restarts the replicas
under that limit and runs up to 3 trials of the scenario (`heisen.stress.Attempt`), one at a
time, stopping at the first that violates the target invariant (the ladder's; any the
section checks when it does not check the target). The limits fall, so the first that
reproduces is the mildest starvation that shows the race. The phase's own trials then
run under it; when none reproduced, under the services' own limits (a memory limit), else
under the last CPU step tried, so that contain still measures under a limit, and the
outputs say that none reproduced.

It terminates: three conditions of at most k trials each, the budget
(`phases.contain.escalation.budget`) checked before every trial and every restart.
Where no cgroup is writable there is no escalation: the duty-cycle fallback approximates
one limit, it does not sweep them, so the existing behaviour for that case stays.
A condition whose invariants could not be evaluated is recorded with its error and
counts as not reproduced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from heisen import events, outputs
from heisen.phase import Finding, PhaseContext
from heisen.schema import ContainSection, Resources
from heisen.stress import Attempt, replays_naming
from heisen.system import format_cpu

CPU_STEPS = (0.5, 0.25, 0.1)
LABEL = "contain-escalation"


@dataclass(frozen=True)
class Escalated:
    """What the search found: its record for the outputs, and the limits to run under."""

    record: outputs.Escalation
    limits: dict[str, Resources]


def escalates(ctx: PhaseContext, section: ContainSection, limits: Mapping[str, Resources]) -> bool:
    """Whether contain searches for a CPU limit: none is given, heisen starts a service it can
    restart, and cgroups can enforce the limits."""
    if any(resources.cpu is not None for resources in limits.values()) or not _services(ctx):
        return False
    assert ctx.system is not None
    return ctx.system.cgroups_unavailable_reason() is None


def _services(ctx: PhaseContext) -> list[str]:
    return [name for name, service in ctx.pipeline.services.items() if service.url is None]


def escalate(
    ctx: PhaseContext, section: ContainSection, limits: Mapping[str, Resources]
) -> Escalated:
    """Try falling CPU limits until one reproduces the target; the services end as they began."""
    system = ctx.system
    assert system is not None
    services = _services(ctx)
    budget = section.escalation.budget
    record = outputs.Escalation(
        tried=[], reproduced_with=None, budget_s=budget, budget_exhausted=False
    )
    attempt = Attempt.of_section(ctx, LABEL, section, budget)
    original = {name: system.resources_of(name) for name in services}
    chosen: dict[str, Resources] = {}
    found = False
    for cpu in CPU_STEPS:
        if record.tried and attempt.out_of_time:
            record.budget_exhausted = True
            break
        chosen = {name: Resources(cpu=cpu, memory=_memory(limits, name)) for name in services}
        label = f"{', '.join(services)} cpu={format_cpu(cpu)}"
        ctx.emit(events.Progress("contain", f"escalation: trying {label}"))
        for name, resources in chosen.items():
            system.set_resources(name, resources)
        before = _throttled_periods(ctx, services)
        tried = attempt.run(ctx, label)
        after = _throttled_periods(ctx, services)
        tried.acted = None if before is None or after is None else after > before
        record.tried.append(tried)
        if tried.reproduced:
            record.reproduced_with = label
            ctx.emit(events.Progress("contain", f"escalation: reproduced with {label}"))
            found = True
            break
    # On an exception the services stay as they are: the runner stops the whole system.
    for name, resources in original.items():
        system.set_resources(name, resources)
    if found:
        return Escalated(record, chosen)
    return Escalated(record, dict(limits) or chosen)


def _throttled_periods(ctx: PhaseContext, services: Sequence[str]) -> int | None:
    """Throttled CFS periods over the services' replicas so far (None: a backend cannot say)."""
    assert ctx.system is not None
    total = 0
    for name in services:
        throttling = ctx.system.replicas(name).throttling()
        if throttling is None:
            return None
        total += throttling.throttled_periods
    return total


def _memory(limits: Mapping[str, Resources], name: str) -> int | None:
    own = limits.get(name)
    return own.memory if own is not None else None


def summary_note(record: outputs.Escalation) -> str:
    """What the phase's summary says of the search."""
    if record.reproduced_with is not None:
        return f"reproduced with {record.reproduced_with} (found by escalation: no cpu: given)"
    said = f"escalation tried {len(record.tried)} CPU limit(s), none reproduced"
    if record.budget_exhausted:
        said += f"; it stopped at its {record.budget_s:g}s budget"
    return said


def naming_condition(findings: Sequence[Finding], record: outputs.Escalation) -> list[Finding]:
    """The findings with their replay naming the condition escalation found."""
    return replays_naming(findings, record, "phases.contain.resources")
