"""One condition tried at a time: the search isolate and contain run when the pipeline does
not say which latency or CPU limit shows the race (their `_escalate.py`).

`Attempt` is the trials one condition gets: up to `trials`, each run alone
(`run_trials` of one trial), stopping at the first that violates `target`
(any invariant the section checks when `target` is None) or at the search's
`deadline` (after at least one trial). A condition whose invariants could not
be evaluated keeps the error and counts as not reproduced: never as a pass,
never as the race.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from heisen import events
from heisen.errors import NotEvaluated
from heisen.outputs import Escalation, EscalationTry
from heisen.phase import Finding, PhaseContext
from heisen.schema import TrialsSection
from heisen.stress._trials import Conditions, TrialsResult, run_trials

TRIALS_PER_CONDITION = 3


@dataclass(frozen=True)
class Attempt:
    """How each condition of one search is tried."""

    conditions: Conditions
    trials: int
    target: str | None
    deadline: float

    @classmethod
    def of_section(
        cls, ctx: PhaseContext, label: str, section: TrialsSection, budget_s: float
    ) -> Attempt:
        """Single trials of the section's scenario, at most `TRIALS_PER_CONDITION` (fewer when
        the section asks for fewer), aimed at the ladder's target when the section checks it."""
        target = ctx.ladder_target()
        if target is not None and section.invariants is not None:
            target = target if target in section.invariants else None
        one_trial = dataclasses.replace(
            Conditions.of_section(label, section, {}),
            trials=1,
            stop="first-violation",
            confidence=None,
        )
        trials = min(section.trials, TRIALS_PER_CONDITION)
        return cls(one_trial, trials, target, time.monotonic() + budget_s)

    @property
    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def run(self, ctx: PhaseContext, condition: str) -> EscalationTry:
        """Try the condition now in place (named `condition` in the outputs)."""
        tried = EscalationTry(
            condition=condition, trials=0, violations=0, reproduced=False, acted=None, error=None
        )
        for index in range(1, self.trials + 1):
            if tried.trials and self.out_of_time:
                break
            try:
                result = run_trials(
                    dataclasses.replace(ctx, emit=_numbered(ctx, index, self.trials)),
                    self.conditions,
                )
            except NotEvaluated as exc:
                tried.error = str(exc)
                break
            tried.trials += len(result.trials)
            if _violated(result, self.target):
                tried.violations += 1
                tried.reproduced = True
                break
        return tried


def _numbered(ctx: PhaseContext, index: int, total: int) -> events.EventSink:
    """The sink for one trial run alone: its progress reads `trial 2/3` of the condition."""

    def sink(event: events.Event) -> None:
        if isinstance(event, events.TrialFinished):
            event = dataclasses.replace(event, trial=index, trials=total)
        ctx.emit(event)

    return sink


def _violated(result: TrialsResult, target: str | None) -> bool:
    return any(
        verdict.violated and (target is None or verdict.name == target)
        for outcome in result.trials
        for verdict in outcome.verdicts
    )


def replays_naming(
    findings: Sequence[Finding], record: Escalation, pin_under: str
) -> list[Finding]:
    """The findings, their replay naming the condition the search found (a replay searches
    again; the note says where to pin the condition so that it does not have to)."""
    condition = record.reproduced_with
    if condition is None:
        return list(findings)
    note = f"  # reproduced with {condition}; pin it under {pin_under}"
    return [
        dataclasses.replace(finding, replay=finding.replay + note) if finding.replay else finding
        for finding in findings
    ]
