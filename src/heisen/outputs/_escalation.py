"""What isolate and contain write when the pipeline did not say how to widen the window.

isolate with no `toxics:` tries latency on each link at rising magnitudes, contain with
no `cpu:` tries falling CPU limits; each condition runs a few trials. `escalation` records
every condition tried, in order, the first (smallest) that reproduced the target invariant
(`reproduced_with`, None when none did), the time budget and whether it ran out.
"""

from __future__ import annotations

from pydantic import Field

from heisen.outputs._base import Number, OutputModel


class EscalationTry(OutputModel):
    """One condition: `inventory->payments +100 ms`, or `inventory cpu=250m`."""

    condition: str = ""
    trials: int = 0
    violations: int = 0
    reproduced: bool = False
    acted: bool | None = None  # the toxic delayed traffic, the limit throttled (None: unread)
    error: str | None = None  # why the condition could not be judged (not a reproduction)


class Escalation(OutputModel):
    tried: list[EscalationTry] = Field(default_factory=list)
    reproduced_with: str | None = None
    budget_s: Number = 0.0
    budget_exhausted: bool = False
