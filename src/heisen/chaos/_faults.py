"""The rollback ledger: every fault chaos applies, and how to take it back.

A fault is applied *through* `Faults.apply(label, do, undo)`, under one lock,
and recorded with its undo. `close()` shuts the ledger and undoes every fault
still active, newest first; after it, `apply` refuses, so an experiment worker
that wakes up late cannot add a toxic behind the rollback's back. That is what
makes "every fault removed on every exit path" hold with several worker
threads: the main thread's `finally` closes the ledger, whatever raised.

A fault that needs no undo (a killed replica, which the supervisor restarts)
is still recorded while it lasts, so OnChaos probes know chaos is active.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from heisen.chaos._timeline import Timeline

log = logging.getLogger(__name__)
T = TypeVar("T")


class Faults:
    """Active faults with their undo actions; thread-safe."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline
        self._lock = threading.RLock()
        self._active: dict[int, tuple[str, Callable[[], None]]] = {}
        self._tokens = itertools.count(1)
        self._closed = False
        self.undo_errors: list[str] = []

    def apply(
        self, label: str, do: Callable[[], T], undo: Callable[[], None]
    ) -> tuple[int, T] | None:
        """Run `do` and remember `undo`; None (and nothing done) once the ledger is closed."""
        with self._lock:
            if self._closed:
                return None
            result = do()
            token = next(self._tokens)
            self._active[token] = (label, undo)
            return token, result

    def remove(self, token: int) -> None:
        """Undo one fault now (a no-op when the rollback already did)."""
        with self._lock:
            entry = self._active.pop(token, None)
        if entry is not None:
            self._undo(*entry)

    def active(self) -> list[str]:
        with self._lock:
            return [label for label, _ in self._active.values()]

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> int:
        """Refuse new faults and undo every active one, newest first; returns how many."""
        with self._lock:
            self._closed = True
            entries = list(self._active.values())[::-1]
            self._active.clear()
        for label, undo in entries:
            self._undo(label, undo)
        return len(entries)

    def _undo(self, label: str, undo: Callable[[], None]) -> None:
        try:
            undo()
        except Exception as exc:  # the rollback goes on; the error is reported
            log.warning("could not remove %s: %s", label, exc)
            self.undo_errors.append(f"{label}: {exc}")
            self._timeline.add("rollback-error", f"{label}: {exc}")
        else:
            self._timeline.add("removed", label)
