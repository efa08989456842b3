"""Latency histograms (HdrHistogram, microsecond resolution) and the load summary.

`LatencyRecorder` wraps `hdrh` so that nothing else imports it. Values are
recorded in nanoseconds and stored in microseconds, 3 significant digits,
from 1 µs to 1 hour; larger values are clamped to the top. Recorders merge
(`merge`) and travel between processes as bytes (`encode` / `decode`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from heisen._serialised import JsonObject
from heisen.stress._records import RequestRecord

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000
_DIGITS = 3
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p75", 75.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)


class LatencyRecorder:
    """An HdrHistogram of latencies; record in ns, read percentiles in ms."""

    __slots__ = ("_hist",)

    def __init__(self, histogram: HdrHistogram | None = None) -> None:
        self._hist = histogram or HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)

    def record_ns(self, value_ns: int) -> None:
        micros = min(max(value_ns // 1000, _LOWEST_US), _HIGHEST_US)
        self._hist.record_value(micros)

    @property
    def count(self) -> int:
        return int(self._hist.get_total_count())

    def merge(self, other: LatencyRecorder) -> LatencyRecorder:
        """Add `other`'s values into this recorder; returns self."""
        self._hist.add(other._hist)
        return self

    def percentiles_ms(self) -> dict[str, float]:
        """p50…p99.9 and max in milliseconds (0.0 everywhere when empty)."""
        # One pass over the buckets for all of them (each get_value_at_percentile is its own).
        values = self._hist.get_percentile_to_value_dict([pct for _, pct in PERCENTILES])
        out = {name: values[pct] / 1000.0 if self.count else 0.0 for name, pct in PERCENTILES}
        out["max"] = self._hist.get_max_value() / 1000.0 if self.count else 0.0
        return out

    def encode(self) -> bytes:
        return bytes(self._hist.encode())

    @classmethod
    def decode(cls, data: bytes) -> LatencyRecorder:
        recorder = cls()
        if data:
            recorder._hist.decode_and_add(data)
        return recorder


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What a phase reports about the requests of a run (manifest keys)."""

    requests: int
    duration_s: float
    rps: float
    latency_ms: dict[str, float]
    latency_uncorrected_ms: dict[str, float]
    status_codes: dict[str, int]
    errors: dict[str, int]
    corrected: bool = field(default=False)

    @property
    def shown_rps(self) -> float:
        """`rps` as the manifest shows it (one decimal)."""
        return round(self.rps, 1)

    @property
    def shown_p99_ms(self) -> float | None:
        """The 99th percentile (ms) as the manifest shows it, None without a latency."""
        p99 = self.latency_ms.get("p99")
        return None if p99 is None else round(p99, 3)

    def to_dict(self) -> JsonObject:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 6),
            "rps": round(self.rps, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "latency_uncorrected_ms": {
                k: round(v, 3) for k, v in self.latency_uncorrected_ms.items()
            },
            "status_codes": dict(self.status_codes),
            "errors": dict(self.errors),
        }


def summarize(records: Iterable[RequestRecord]) -> LoadSummary:
    """Counts, rate and latency percentiles of `records`.

    `latency_ms` is measured from the intended send time when the records have
    one (open models: coordinated omission corrected), else from the write;
    `latency_uncorrected_ms` is always from the write. Requests that never got
    a complete response count in `errors` and, when they were sent, in latency
    up to the moment they failed. `rps` is requests over the span from the
    first (intended or actual) send to the last end.
    """
    corrected: list[int] = []
    uncorrected: list[int] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    count = 0
    start = end = None
    any_intended = False
    for record in records:
        count += 1
        begin = record.intended_ns if record.intended_ns is not None else record.sent_ns
        if record.intended_ns is not None:
            any_intended = True
        if begin is not None:
            start = begin if start is None else min(start, begin)
            corrected.append(record.end_ns - begin)
        end = record.end_ns if end is None else max(end, record.end_ns)
        if record.sent_ns is not None:
            uncorrected.append(record.end_ns - record.sent_ns)
        if record.error is not None:
            errors[record.error] += 1
        elif record.status is not None:
            statuses[str(record.status)] += 1
    duration = (end - start) / 1e9 if start is not None and end is not None else 0.0
    return LoadSummary(
        requests=count,
        duration_s=duration,
        rps=count / duration if duration > 0 else 0.0,
        latency_ms=percentiles_ms(corrected),
        latency_uncorrected_ms=percentiles_ms(uncorrected),
        status_codes=dict(sorted(statuses.items())),
        errors=dict(sorted(errors.items())),
        corrected=any_intended,
    )


EXACT_UP_TO = 50_000
"""Up to this many values, percentiles are exact (a sort); past it, an HdrHistogram's."""


def percentiles_ms(values_ns: list[int]) -> dict[str, float]:
    """p50…p99.9 and max in milliseconds (0.0 everywhere when empty).

    The p-th percentile is the smallest value that at least p% of the values
    do not exceed, as HdrHistogram defines it (which it also gives, to 3
    significant digits, past EXACT_UP_TO values).
    """
    if len(values_ns) > EXACT_UP_TO:
        recorder = LatencyRecorder()
        for value in values_ns:
            recorder.record_ns(value)
        return recorder.percentiles_ms()
    if not values_ns:
        return {**{name: 0.0 for name, _ in PERCENTILES}, "max": 0.0}
    ordered = sorted(max(value, 0) for value in values_ns)
    count = len(ordered)
    out = {
        name: ordered[max(0, math.ceil(pct / 100 * count) - 1)] / 1e6 for name, pct in PERCENTILES
    }
    out["max"] = ordered[-1] / 1e6
    return out
