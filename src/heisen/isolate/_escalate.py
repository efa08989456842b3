"""Escalation: when isolate's section names no toxic, find the latency that reproduces the race.

Many races need a condition nobody thinks to name: a dependency slower than the
client's timeout, a link slow enough for a cancelled call. With no `toxics:`,
isolate tries a lognormal latency (median `m` ms, sigma 0.5, on the responses) on
each link in turn, `m` rising through `MAGNITUDES_MS`: every link at 1 ms, then
every link at 10 ms, and so on, so the first condition that reproduces is the
smallest. Each condition runs up to 3 trials of the scenario (`heisen.stress.Attempt`)
(fewer when the section asks for fewer), one at a time, and stops at the first that
violates the target invariant (the ladder's; any invariant when the section does not
check the target). The phase's own trials then run under the condition found, or
under no toxic when none reproduced; the outputs list every condition tried either way.

It terminates: at most links x magnitudes conditions of at most k trials each, and the
budget (`phases.isolate.escalation.budget`) is checked before every trial, so the
search overruns it by one trial at most (a trial is bounded by the scenario's timeout).
A condition whose invariants could not be evaluated (a probe timed out under 500 ms of
latency) is recorded with its error and counts as not reproduced: never as a pass, and
never as the race.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heisen import events, outputs
from heisen.phase import Finding, PhaseContext
from heisen.schema import IsolateSection, Toxic
from heisen.stress import Attempt, replays_naming

MAGNITUDES_MS = (1, 10, 100, 500)
SIGMA = 0.5
LABEL = "isolate-escalation"


@dataclass(frozen=True)
class Escalated:
    """What the search found: its record for the outputs, and the toxics to run under."""

    record: outputs.Escalation
    toxics: list[Toxic]


def latency(link: str, median_ms: int) -> Toxic:
    return Toxic(
        link=link,
        type="latency",
        attributes={"distribution": "lognormal", "median_ms": median_ms, "sigma": SIGMA},
    )


def escalate(ctx: PhaseContext, section: IsolateSection) -> Escalated:
    """Try latency on each link at rising magnitudes until one reproduces the target."""
    system = ctx.system
    assert system is not None, "the runner starts the system before isolate"
    budget = section.escalation.budget
    record = outputs.Escalation(
        tried=[], reproduced_with=None, budget_s=budget, budget_exhausted=False
    )
    attempt = Attempt.of_section(ctx, LABEL, section, budget)
    for median_ms in MAGNITUDES_MS:
        for link in system.links():
            if attempt.out_of_time:
                record.budget_exhausted = True
                return Escalated(record, [])
            toxic = latency(link, median_ms)
            label = f"{link} +{median_ms} ms"
            ctx.emit(events.Progress("isolate", f"escalation: trying {label}"))
            name = f"escalate-{median_ms}ms"
            system.add_toxic(
                link,
                {"name": name, "type": "latency", "stream": toxic.stream, "toxicity": 1.0}
                | {"attributes": dict(toxic.attributes)},
            )
            before = system.link_traffic(link)
            try:
                tried = attempt.run(ctx, label)
                tried.acted = (system.link_traffic(link) - before).toxic_chunks > 0
            finally:
                system.remove_toxic(link, name)
            record.tried.append(tried)
            if tried.reproduced:
                record.reproduced_with = label
                ctx.emit(events.Progress("isolate", f"escalation: reproduced with {label}"))
                return Escalated(record, [toxic])
    return Escalated(record, [])


def summary_note(record: outputs.Escalation) -> str:
    """What the phase's summary says of the search."""
    if record.reproduced_with is not None:
        return f"reproduced with {record.reproduced_with} (found by escalation: the section names no toxic)"
    if not record.tried and not record.budget_exhausted:
        return "escalation had no link to slow; the trials ran under no toxic"
    said = f"escalation tried {len(record.tried)} condition(s), none reproduced"
    if record.budget_exhausted:
        said += f"; it stopped at its {record.budget_s:g}s budget"
    return said + "; the trials ran under no toxic"


def naming_condition(findings: Sequence[Finding], record: outputs.Escalation) -> list[Finding]:
    """The findings with their replay naming the condition escalation found."""
    return replays_naming(findings, record, "phases.isolate.toxics")
