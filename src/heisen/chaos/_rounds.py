"""What the schedule and the injectors share: rounds, their records, verdicts.

Schedule. Experiment `e` runs `count` rounds; round k starts at
`start + k * interval` seconds after the load began. `interval` defaults to
`duration / count` for the instantaneous kinds (kills, restarts: LitmusChaos'
CHAOS_INTERVAL within TOTAL_CHAOS_DURATION) and to `duration` for the timed
kinds (faults that last `duration`, back to back).

An injector (one per backend: `LocalInjector`, `KubeInjector`) is given one
`Round` at a time and returns the targets it hit; it notes in the round's
`ExperimentRecord` when its faults were active.
"""

from __future__ import annotations

import enum
import random
import threading
from dataclasses import dataclass, field
from typing import Protocol

from heisen.outputs import Injected
from heisen.schema import Experiment

INSTANT = ("pod-delete", "container-kill", "dependency-restart")


class ChaosVerdict(enum.StrEnum):
    """LitmusChaos' verdicts, of an experiment, a steady-state window or probe, and the run.

    The manifest holds the value (`"Pass"`, `"Fail"`, `"Awaited"`).
    """

    PASS = "Pass"
    FAIL = "Fail"
    AWAITED = "Awaited"


def round_times(experiment: Experiment) -> list[float]:
    """When each round starts, in seconds after the load began."""
    if experiment.interval is not None:
        interval = experiment.interval
    elif experiment.kind in INSTANT:
        interval = experiment.duration / experiment.count
    else:
        interval = experiment.duration
    return [experiment.start + k * interval for k in range(experiment.count)]


def schedule_end(experiment: Experiment) -> float:
    """When the experiment's last fault is planned to end (instant kinds: when it is injected)."""
    last = round_times(experiment)[-1]
    return last if experiment.kind in INSTANT else last + experiment.duration


@dataclass(frozen=True, slots=True)
class RoundDone:
    """A round that hit something: its number, when it began (t_s), what it hit."""

    number: int
    t_s: float
    targets: list[str]


@dataclass
class ExperimentRecord:
    """What one experiment did: the manifest's `experiments[i]` before its verdict.

    `windows`: when its faults were active (t_s since the phase started).
    """

    experiment: Experiment
    planned: int
    rounds: list[RoundDone] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None
    finished: bool = False

    def injected(self) -> Injected:
        targets: list[str] = []
        for done in self.rounds:
            targets.extend(t for t in done.targets if t not in targets)
        return Injected(count=len(self.rounds), targets=targets)


@dataclass(frozen=True, slots=True)
class Round:
    """One round of one experiment, as the schedule hands it to an injector.

    `number` counts from 1; `rng` is the experiment's seeded generator (which
    replicas a kill picks); `stop` is set when the load ends, which releases a
    fault held for its `duration`; `record` is the experiment's record.
    """

    experiment: Experiment
    number: int
    rng: random.Random
    stop: threading.Event
    record: ExperimentRecord

    def active(self, began: float, ended: float) -> None:
        """Note that this round's faults were active from `began` to `ended` (t_s)."""
        self.record.windows.append((began, ended))


class Injector(Protocol):
    """What the phase needs of a backend's faults; see `LocalInjector`, `KubeInjector`."""

    @property
    def warnings(self) -> list[str]:
        """What the run should know about how the faults were made (shown as warnings)."""
        ...

    def check(self, experiment: Experiment) -> None:
        """Refuse, before anything starts, what this backend cannot do (UsageError)."""
        ...

    def inject(self, round_: Round) -> list[str]:
        """One round; blocks while its fault lasts; returns its targets."""
        ...

    def rollback(self) -> None:
        """The catch-all after the ledger closed: whatever this backend may have left behind."""
        ...
