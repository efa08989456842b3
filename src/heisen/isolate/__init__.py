"""isolate: latency-injecting stubs and TCP proxy toxics that widen the race window."""

from heisen.isolate._phase import run

__all__ = ["run"]
