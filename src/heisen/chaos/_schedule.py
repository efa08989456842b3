"""Runs every experiment's rounds on time, one worker thread per experiment.

Workers sleep on a shared stop event, so `stop()` (the end of the load, an
error, Ctrl-C in the main thread) wakes them at once; a fault held for its
`duration` is released by the injector's own `finally`, and whatever a
worker could not release the phase's rollback removes (see `_faults`).
"""

from __future__ import annotations

import threading
import time

from heisen import seeds
from heisen.chaos._rounds import ExperimentRecord, Injector, Round, RoundDone, round_times
from heisen.chaos._timeline import Timeline
from heisen.schema import Experiment


class Schedule:
    """The experiments of one chaos run, started together at `start()`."""

    def __init__(
        self,
        experiments: list[Experiment],
        injector: Injector,
        timeline: Timeline,
        seed: int,
        horizon_s: float,
    ) -> None:
        self.injector = injector
        self.timeline = timeline
        self.seed = seed
        self.horizon_s = horizon_s
        self.records = [
            ExperimentRecord(e, len([t for t in round_times(e) if t < horizon_s]))
            for e in experiments
        ]
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        origin = time.monotonic()
        for record in self.records:
            thread = threading.Thread(
                target=self._work,
                args=(record, origin),
                daemon=True,
                name=f"heisen-chaos-{record.experiment.name}",
            )
            self._threads.append(thread)
            thread.start()

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self, record: ExperimentRecord, origin: float) -> None:
        experiment = record.experiment
        rng = seeds.rng(self.seed, "chaos", experiment.name)
        try:
            for number, at in enumerate(round_times(experiment), start=1):
                if at >= self.horizon_s:
                    break
                if self.stop_event.wait(max(0.0, origin + at - time.monotonic())):
                    return
                began = self.timeline.now()
                targets = self.injector.inject(
                    Round(experiment, number, rng, self.stop_event, record)
                )
                if targets:
                    record.rounds.append(RoundDone(number, round(began, 3), targets))
            record.finished = not self.stop_event.is_set() or len(record.rounds) == record.planned
        except Exception as exc:  # reported in the manifest; the rollback still runs
            record.error = f"{type(exc).__name__}: {exc}"
            self.timeline.add("experiment-error", record.error, experiment=experiment.name)
