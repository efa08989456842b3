"""Delay distributions as WireMock defines them, sampled from a seeded RNG.

- `lognormal {median, sigma[, maxValue]}`: `median · exp(sigma · N(0, 1))`
  milliseconds; above `maxValue` the sample is drawn again (WireMock ≥ 3.13).
- `uniform {lower, upper}`: uniform on [lower, upper] milliseconds.
- `chunkedDribbleDelay {numberOfChunks, totalDuration}`: the body is cut in
  `numberOfChunks` pieces sent `totalDuration / numberOfChunks` ms apart.

Samples are floats (WireMock rounds to whole milliseconds): a stub that widens
a race window should not quantise it. `quantile` gives the theoretical value,
which the tests and the benchmark compare the measured delays with.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from heisen._serialised import JsonObject
from heisen.system.stub._matchers import Path, Report

MAX_RESAMPLES = 1000
MAX_DELAY_MS = 3_600_000.0
"""One hour: the longest delay (median, bound, total) a mapping may ask for."""
MAX_SIGMA = 10.0
"""Beyond this a lognormal's tail overflows a float (exp(sigma · 38) for the rarest draws)."""
MAX_CHUNKS = 1_000_000


@dataclass(frozen=True, slots=True)
class LogNormal:
    median: float
    sigma: float
    max_value: float | None = None

    def sample(self, rng: random.Random) -> float:
        for _ in range(MAX_RESAMPLES):
            value = self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))
            if self.max_value is None or value <= self.max_value:
                return value
        return self.max_value if self.max_value is not None else self.median

    def quantile(self, q: float) -> float:
        if self.max_value is None:
            return self.median * math.exp(self.sigma * NormalDist().inv_cdf(q))
        # Truncated above max_value: rescale q into the kept part of the distribution.
        kept = (
            NormalDist().cdf(math.log(self.max_value / self.median) / self.sigma)
            if self.sigma
            else 1.0
        )
        return self.median * math.exp(self.sigma * NormalDist().inv_cdf(q * kept))

    def to_json(self) -> JsonObject:
        data: JsonObject = {"type": "lognormal", "median": self.median, "sigma": self.sigma}
        if self.max_value is not None:
            data["maxValue"] = self.max_value
        return data


@dataclass(frozen=True, slots=True)
class Uniform:
    lower: float
    upper: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.lower, self.upper)

    def quantile(self, q: float) -> float:
        return self.lower + q * (self.upper - self.lower)

    def to_json(self) -> JsonObject:
        return {"type": "uniform", "lower": self.lower, "upper": self.upper}


Distribution = LogNormal | Uniform


@dataclass(frozen=True, slots=True)
class ChunkedDribble:
    chunks: int
    total_ms: float

    @property
    def interval_s(self) -> float:
        return self.total_ms / self.chunks / 1000.0


def _number(
    data: JsonObject,
    key: str,
    path: Path,
    report: Report,
    *,
    minimum: float = 0.0,
    maximum: float = MAX_DELAY_MS,
) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        report((*path, key), f"{key} must be a number" if key in data else f"{key} is required")
        return None
    if not minimum <= value <= maximum:  # also false for NaN
        report((*path, key), f"{key} must be between {minimum:g} and {maximum:g}, not {value}")
        return None
    return float(value)


def parse_distribution(data: Any, path: Path, report: Report) -> Distribution | None:
    if not isinstance(data, dict):
        report(path, "delayDistribution is an object with a 'type' (lognormal or uniform)")
        return None
    kind = data.get("type")
    if kind == "lognormal":
        median = _number(data, "median", path, report)
        sigma = _number(data, "sigma", path, report, maximum=MAX_SIGMA)
        cap = _number(data, "maxValue", path, report) if "maxValue" in data else None
        if median is None or sigma is None or ("maxValue" in data and cap is None):
            return None
        if cap is not None and cap < median:
            report((*path, "maxValue"), f"maxValue ({cap:g}) must be ≥ median ({median:g})")
            return None
        return LogNormal(median, sigma, cap)
    if kind == "uniform":
        lower = _number(data, "lower", path, report)
        upper = _number(data, "upper", path, report)
        if lower is None or upper is None:
            return None
        if upper < lower:
            report((*path, "upper"), f"upper ({upper:g}) must be ≥ lower ({lower:g})")
            return None
        return Uniform(lower, upper)
    report(
        (*path, "type"),
        f"unknown delay distribution {kind!r}; heisen's stub knows lognormal and uniform",
    )
    return None


def parse_dribble(data: Any, path: Path, report: Report) -> ChunkedDribble | None:
    if not isinstance(data, dict):
        report(path, "chunkedDribbleDelay is an object {numberOfChunks, totalDuration}")
        return None
    chunks = _number(data, "numberOfChunks", path, report, minimum=1, maximum=MAX_CHUNKS)
    total = _number(data, "totalDuration", path, report)
    if chunks is None or total is None:
        return None
    if chunks != int(chunks):
        report((*path, "numberOfChunks"), f"numberOfChunks is a whole number, not {chunks:g}")
        return None
    return ChunkedDribble(int(chunks), total)
