"""A shared allowance of wall-clock time and search steps, so no check can hang."""

from __future__ import annotations

import time


class Budget:
    """Deadline plus an optional step cap; searches call :meth:`spend` every few hundred steps."""

    __slots__ = ("deadline", "max_steps", "steps")

    def __init__(self, seconds: float, max_steps: int | None = None) -> None:
        self.deadline = time.monotonic() + max(0.0, seconds)
        self.max_steps = max_steps
        self.steps = 0

    def spend(self, steps: int) -> bool:
        """Record ``steps``; False once the time or the step cap is used up."""
        self.steps += steps
        if self.max_steps is not None and self.steps > self.max_steps:
            return False
        return time.monotonic() < self.deadline

    def exhausted(self) -> bool:
        return not self.spend(0)
