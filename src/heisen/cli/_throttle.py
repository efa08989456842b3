"""Progress into a log or a pipe: at most one progress line a second.

On a terminal the live bar redraws in place; anywhere else each progress
event is a line, and a phase that reports four times a second (chaos) would
fill a CI log. `ThrottledProgress` sits between the runner and the terminal
view and lets a progress event through only when a second has passed since
the last one it let through. The last event of a count (trial N of N,
completed == total) always passes, and any other event (a phase starting or
finishing, a warning) passes at once and starts the count again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from heisen import events

PROGRESS_INTERVAL_S = 1.0


class ThrottledProgress:
    """An event sink that forwards to `sink`, dropping progress events closer than `interval_s`."""

    def __init__(
        self,
        sink: Callable[[events.Event], None],
        *,
        interval_s: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    def __call__(self, event: events.Event) -> None:
        counted = isinstance(event, events.TrialFinished) or (
            isinstance(event, events.Progress) and event.total is not None
        )
        if counted:
            assert isinstance(event, events.Progress | events.TrialFinished)  # for the type checker
            now = self._clock()
            recent = self._last is not None and now - self._last < self._interval_s
            if recent and not _last_of_its_count(event):
                return
            self._last = now
        else:
            self._last = None
        self._sink(event)


def _last_of_its_count(event: events.Progress | events.TrialFinished) -> bool:
    if isinstance(event, events.TrialFinished):
        return event.trial >= event.trials
    return (
        event.total is not None and event.completed is not None and event.completed >= event.total
    )
