"""The platform under the phases: what is under test, started, reached, disturbed, stopped."""

from heisen.system._handle import SystemHandle

__all__ = ["SystemHandle"]
