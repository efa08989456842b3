"""A shared allowance of CPU time and search steps, so no check can hang.

The seconds are the checking thread's own CPU time, not wall-clock time: how
far a search gets within its budget then depends on the history alone, not
on what else the machine runs (on two busy cores a second of wall time held
an eighth of a second of the checker's work, so a history decided on a quiet
machine came out "unknown" on a loaded one). Wall-clock time is still
bounded: past WALL_FACTOR times the budget the search stops all the same.
"""

from __future__ import annotations

import time

# How many times its CPU budget a check may take in wall-clock time, however starved it is.
WALL_FACTOR = 10.0


class Budget:
    """CPU seconds plus an optional step cap; searches call :meth:`spend` every few hundred steps."""

    __slots__ = ("cpu_deadline", "max_steps", "steps", "wall_deadline")

    def __init__(self, seconds: float, max_steps: int | None = None) -> None:
        seconds = max(0.0, seconds)
        self.cpu_deadline = time.thread_time() + seconds
        self.wall_deadline = time.monotonic() + seconds * WALL_FACTOR
        self.max_steps = max_steps
        self.steps = 0

    def spend(self, steps: int) -> bool:
        """Record ``steps``; False once the CPU time, the wall-clock bound or the step cap is used up."""
        self.steps += steps
        if self.max_steps is not None and self.steps > self.max_steps:
            return False
        return time.thread_time() < self.cpu_deadline and time.monotonic() < self.wall_deadline

    def exhausted(self) -> bool:
        return not self.spend(0)
