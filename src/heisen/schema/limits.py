"""Every range a pipeline value must fall in, in one place.

A value outside its range cannot give a meaningful run: a zero timeout times
every request out, an infinite one hangs, `cpu: 1m` is below what the kernel
can enforce, a sweep of a billion requests never ends. The schema takes its
bounds from here and `docs/pipeline-limits.md` lists them (a test keeps the
two in step: `tests/core/test_corpus.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

CFS_PERIOD_US = 100_000
"""The CFS period heisen sets (and Kubernetes uses): 100 ms."""
CFS_MIN_QUOTA_US = 1_000
"""The smallest CFS quota the kernel accepts: 1 ms per period."""


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive bounds of a value; `exclusive_low` when the low end itself is refused."""

    name: str
    low: float
    high: float
    unit: str = ""
    exclusive_low: bool = False
    note: str = ""

    def field(self, default: Any = ..., **kwargs: Any) -> Any:
        """A pydantic Field with these bounds."""
        if self.exclusive_low:
            return Field(default, gt=self.low, le=self.high, **kwargs)
        return Field(default, ge=self.low, le=self.high, **kwargs)

    def show(self, value: float) -> str:
        if self.unit == "s":
            return _seconds(value)
        if self.unit == "cores":
            return f"{value * 1000:g}m" if value < 1 else f"{value:g}"
        if self.unit == "bytes":
            return _bytes(value)
        if value == int(value) and abs(value) < 1e21:
            return f"{int(value):,}"
        return f"{value:g}"

    def text(self) -> str:
        if self.exclusive_low:
            return f"more than {self.show(self.low)} and at most {self.show(self.high)}"
        return f"{self.show(self.low)} to {self.show(self.high)}"

    def check(self, value: float) -> float:
        """`value`, or ValueError naming the range."""
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{self.name} must be a finite number")
        too_low = value <= self.low if self.exclusive_low else value < self.low
        if too_low or value > self.high:
            message = f"{self.name} must be {self.text()} (got {self.show(value)})"
            if self.note:
                message += f"; {self.note}"
            raise ValueError(message)
        return value


def _seconds(value: float) -> str:
    """`24h`, `90s`, `1ms`, `250µs`: the largest unit that writes it whole, else seconds."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= size and abs(value / size - round(value / size)) < 1e-9:
            return f"{value / size:,.0f}{unit}"
    return f"{value:g}s" if value else "0s"


def _bytes(value: float) -> str:
    for unit, size in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return "1 byte" if value == 1 else f"{value:,.0f} bytes"


HOUR = 3600.0
DAY = 24 * HOUR

# Durations (seconds).
DURATION = Range("a duration", 0.001, DAY, "s")
"""Every duration unless named below: timeouts, `during:`, intervals, chaos durations."""
OFFSET = Range("an offset", 0.0, DAY, "s")
"""Durations that may be zero: a chaos experiment's `start:` and `grace:`."""

# Quantities a machine can honour.
CPU = Range(
    "a CPU quantity",
    CFS_MIN_QUOTA_US / CFS_PERIOD_US,
    1024.0,
    "cores",
    note="the kernel's CFS needs at least 1 ms of quota per 100 ms period, so 10m is the least",
)
MEMORY = Range(
    "a memory quantity",
    4 * 1024**2,
    1024**4,
    "bytes",
    note="below 4Mi a process is killed before it starts",
)

# Counts.
REPLICAS = Range("replicas", 1, 64)
TRIALS = Range("trials", 1, 10_000)
WORKERS = Range("workers", 1, 256)
BURST_REQUESTS = Range("a burst's requests", 1, 10_000)
COPIES = Range("copies", 1, 10_000)
HOTSPOT = Range("hotspot", 1, 1000)
AGENTS = Range("agents", 1, 1_000_000)
CYCLES = Range("cycles", 1, 1_000_000)
OBSERVE_REPEAT = Range("repeat", 1, 1000)
FUZZ_CASES = Range("cases", 1, 100_000)
CONCURRENCY = Range("concurrency", 1, 1000)
MAX_STRING_BYTES = Range("max_string_bytes", 1, 64 * 1024 * 1024, "bytes")
EXPERIMENT_COUNT = Range("count", 1, 1000)
PERCENTAGE = Range("percentage", 1, 100)
CORES = Range("cores", 1, 64)
SEED = Range("seed", 0, 2**63 - 1)
HTTP_STATUS = Range("an HTTP status", 100, 599)

# Sweep.
SWEEP_SIZE = Range("a sweep's burst size", 1, BURST_REQUESTS.high)
SWEEP_FACTOR = Range("factor", 1.0, 100.0, exclusive_low=True)
SWEEP_TRIALS = Range("a sweep's trials", 1, 1000)
SWEEP_TOTAL_TRIALS = 10_000
"""Rounds x trials a sweep may run, counted from its start (1 when not given) to its max."""

# Rates and weights.
RATE = Range("a rate (requests/s)", 0.0, 1_000_000.0, exclusive_low=True)
RAMP_FROM = Range("a starting rate (requests/s)", 0.0, 1_000_000.0)
CHAOS_RATE = Range("a rate (requests/s)", 0.0, 100_000.0, exclusive_low=True)
MIX_WEIGHT = Range("a mix weight", 0.0, 1_000_000.0, exclusive_low=True)
MIX_MIN_SHARE = 0.01
"""A mix spreads its requests over 100 slots: a request with a smaller share is never sent."""
FRACTION = Range("a fraction", 0.0, 1.0)
"""toxicity, availability, tolerance."""

# Toxic attributes (milliseconds) and other numbers inside `attributes:`.
TOXIC_MS = Range("a toxic's time (ms)", 0.0, DAY * 1000)

ALL: tuple[Range, ...] = (
    DURATION,
    OFFSET,
    CPU,
    MEMORY,
    REPLICAS,
    TRIALS,
    WORKERS,
    BURST_REQUESTS,
    COPIES,
    HOTSPOT,
    AGENTS,
    CYCLES,
    OBSERVE_REPEAT,
    FUZZ_CASES,
    CONCURRENCY,
    MAX_STRING_BYTES,
    EXPERIMENT_COUNT,
    PERCENTAGE,
    CORES,
    SEED,
    HTTP_STATUS,
    SWEEP_SIZE,
    SWEEP_FACTOR,
    SWEEP_TRIALS,
    RATE,
    RAMP_FROM,
    CHAOS_RATE,
    MIX_WEIGHT,
    FRACTION,
    TOXIC_MS,
)
