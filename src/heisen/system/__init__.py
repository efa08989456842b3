"""The platform under the phases: what is under test, started, reached, disturbed, stopped."""

from heisen.system._handle import LinkTraffic, SystemHandle
from heisen.system._toxics import median_delay_ms

__all__ = ["LinkTraffic", "SystemHandle", "median_delay_ms"]
