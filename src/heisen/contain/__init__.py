"""contain: does CPU throttling make the race reliably observable? Replicas under real CPU/memory limits."""

from heisen.contain._limits import effective_limits
from heisen.contain._phase import needs_system, run

__all__ = ["effective_limits", "needs_system", "run"]
