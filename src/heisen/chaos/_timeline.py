"""The chaos timeline: what was injected, removed and observed, and when.

Every entry is a `TimelineEntry` (`{t_s, event, detail}`, and the
`experiment` it belongs to when there is one) with `t_s` in seconds since the
chaos phase started (monotonic clock). Threads (the experiment workers, the
probe loop, the rollback) append to one `Timeline`; the manifest and the
report show it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from heisen.outputs import TimelineEntry


@dataclass
class Timeline:
    """A thread-safe, append-only list of timed events."""

    started: float = field(default_factory=time.monotonic)
    _entries: list[TimelineEntry] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """Seconds since the phase started."""
        return time.monotonic() - self.started

    def add(self, event: str, detail: str = "", *, experiment: str | None = None) -> TimelineEntry:
        entry = TimelineEntry(t_s=round(self.now(), 3), event=event, detail=detail)
        if experiment is not None:
            entry.experiment = experiment  # set only when named, so the manifest shows it only then
        with self._lock:
            self._entries.append(entry)
        return entry

    def entries(self) -> list[TimelineEntry]:
        """Every entry so far, in time order."""
        with self._lock:
            return sorted(self._entries, key=lambda entry: entry.t_s)
