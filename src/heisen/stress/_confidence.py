"""How many clean trials prove a rate bound, and what a run of trials proved.

With 0 violations in n independent trials, the exact (Clopper-Pearson)
one-sided upper bound of the violation rate at confidence `level` is
`1 - (1 - level) ** (1 / n)`: the largest rate under which seeing no
violation in n trials still has a chance of at least 1 - level. Asking that
it be below `rate_below` gives n = ceil(ln(1 - level) / ln(1 - rate_below)):
299 trials for 1% at 95%, 59 for 5% at 95%, 459 for 1% at 99%.

A single violation ends the question (the race is real), so the trials stop
at the first one. Trials are assumed independent: each starts from the
scenario's `setup:`, and nothing else carries over between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from heisen.outputs import Bound


@dataclass(frozen=True, slots=True)
class Goal:
    """`confidence:` as the trial engine uses it."""

    rate_below: float
    level: float
    max_duration_s: float

    @property
    def trials_needed(self) -> int:
        return math.ceil(math.log(1 - self.level) / math.log(1 - self.rate_below))


def upper_bound(trials: int, level: float) -> float:
    """The rate below which 0 violations in `trials` trials put it, at `level`."""
    return 1.0 if trials <= 0 else 1 - (1 - level) ** (1 / trials)


def bound(goal: Goal, trials: int, violations: int) -> Bound:
    """The manifest's `bound:`: `{rate_below, level, trials, needed, upper, proven}`."""
    upper = upper_bound(trials, goal.level) if violations == 0 else None
    return Bound(
        rate_below=goal.rate_below,
        level=goal.level,
        trials=trials,
        needed=goal.trials_needed,
        upper=round(upper, 6) if upper is not None else None,
        proven=violations == 0 and trials >= goal.trials_needed,
    )


def in_words(bound: Bound) -> str:
    """`violation rate below 1% with 95% confidence (0 violations in 299 trials)`, or why not."""
    below, level, trials = _percent(bound.rate_below), _percent(bound.level), bound.trials
    if bound.proven:
        return (
            f"violation rate below {below} with {level} confidence "
            f"(0 violations in {trials} trials)"
        )
    if bound.upper is None:
        return f"not proven: a violation was found in {trials} trials"
    return (
        f"not proven: {trials} of the {bound.needed} trials needed ran in the time allowed; "
        f"the rate is below {_percent(bound.upper)} at {level} confidence"
    )


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"
