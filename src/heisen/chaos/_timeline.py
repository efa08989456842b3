"""The chaos timeline: what was injected, removed and observed, and when.

Every entry is `{t_s, event, detail}` with `t_s` in seconds since the chaos
phase started (monotonic clock). Threads (the experiment workers, the probe
loop, the rollback) append to one `Timeline`; the report renders it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timeline:
    """A thread-safe, append-only list of timed events."""

    started: float = field(default_factory=time.monotonic)
    _entries: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """Seconds since the phase started."""
        return time.monotonic() - self.started

    def add(self, event: str, detail: str = "", **extra: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "t_s": round(self.now(), 3),
            "event": event,
            "detail": detail,
            **extra,
        }
        with self._lock:
            self._entries.append(entry)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._entries, key=lambda entry: entry["t_s"])
