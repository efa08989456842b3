"""contain: does CPU throttling make the race reliably observable? Replicas under real CPU/memory limits."""

from heisen.contain._phase import needs_system, run

__all__ = ["needs_system", "run"]
