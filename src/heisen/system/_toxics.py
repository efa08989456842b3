"""Toxics: what a user asks a TCP proxy to do to the bytes of a link.

A toxic is Toxiproxy's model, kept field for field so that a Toxiproxy client
or a JSON document written for Toxiproxy works unchanged:

    {"name": "slow_db", "type": "latency", "stream": "downstream",
     "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 10}}

heisen adds latency distributions with long tails, which Toxiproxy does not
have (its latency is uniform ± jitter):

    {"type": "latency", "attributes": {"distribution": "lognormal",
                                        "median_ms": 80, "sigma": 0.4, "max_ms": 400}}

This module holds the validated specifications and the delay samplers. What
a toxic does to a stream, per connection, lives in `_toxic_streams`.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from heisen._serialised import JsonObject
from heisen.errors import UsageError

__all__ = [
    "Stream",
    "ToxicSpec",
    "ToxicType",
    "make_delay_sampler",
    "parse_toxic",
    "update_toxic",
]


class Stream(enum.StrEnum):
    """Direction of the bytes a toxic acts on."""

    UPSTREAM = "upstream"  # client -> server
    DOWNSTREAM = "downstream"  # server -> client


class ToxicType(enum.StrEnum):
    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    SLOW_CLOSE = "slow_close"
    TIMEOUT = "timeout"
    RESET_PEER = "reset_peer"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"


class _Attributes(BaseModel):
    """Toxiproxy's attributes are integers (ms, µs, KB/s, bytes); heisen's distributions are floats."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Distribution = Literal["fixed", "uniform", "normal", "lognormal"]
_DISTRIBUTION_FIELDS: dict[str, tuple[str, ...]] = {
    "fixed": ("median_ms",),
    "uniform": ("lower_ms", "upper_ms"),
    "normal": ("mean_ms", "stddev_ms"),
    "lognormal": ("median_ms", "sigma"),
}


class LatencyAttributes(_Attributes):
    """Toxiproxy's `latency ± jitter` (uniform), or one of heisen's distributions."""

    latency: int = Field(0, ge=0, description="ms")
    jitter: int = Field(0, ge=0, description="ms")
    distribution: Distribution | None = None
    median_ms: float | None = Field(None, ge=0)
    sigma: float | None = Field(None, ge=0)
    lower_ms: float | None = Field(None, ge=0)
    upper_ms: float | None = Field(None, ge=0)
    mean_ms: float | None = Field(None, ge=0)
    stddev_ms: float | None = Field(None, ge=0)
    max_ms: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> LatencyAttributes:
        if self.distribution is None:
            return self
        missing = [f for f in _DISTRIBUTION_FIELDS[self.distribution] if getattr(self, f) is None]
        if missing:
            raise ValueError(
                f"a {self.distribution} latency needs {', '.join(missing)}"
                f" (it takes {', '.join(_DISTRIBUTION_FIELDS[self.distribution])})"
            )
        if self.distribution == "uniform" and self.lower_ms > self.upper_ms:  # type: ignore[operator]
            raise ValueError("lower_ms must not be above upper_ms")
        return self


class BandwidthAttributes(_Attributes):
    rate: int = Field(0, ge=0, description="KB/s (1 KB = 1000 bytes); 0 = unlimited")


class SlowCloseAttributes(_Attributes):
    delay: int = Field(0, ge=0, description="ms before a close is passed on")


class TimeoutAttributes(_Attributes):
    timeout: int = Field(0, ge=0, description="ms before the link is closed; 0 = never")


class ResetPeerAttributes(_Attributes):
    timeout: int = Field(0, ge=0, description="ms before both peers get a TCP RST")


class SlicerAttributes(_Attributes):
    average_size: int = Field(0, ge=0)
    size_variation: int = Field(0, ge=0)
    delay: int = Field(0, ge=0, description="µs between slices")


class LimitDataAttributes(_Attributes):
    bytes: int = Field(0, ge=0)


ATTRIBUTE_MODELS: dict[ToxicType, type[_Attributes]] = {
    ToxicType.LATENCY: LatencyAttributes,
    ToxicType.BANDWIDTH: BandwidthAttributes,
    ToxicType.SLOW_CLOSE: SlowCloseAttributes,
    ToxicType.TIMEOUT: TimeoutAttributes,
    ToxicType.RESET_PEER: ResetPeerAttributes,
    ToxicType.SLICER: SlicerAttributes,
    ToxicType.LIMIT_DATA: LimitDataAttributes,
}


class ToxicSpec(BaseModel):
    """One toxic on one proxy, as written to the HTTP API (validated, immutable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    type: ToxicType
    stream: Stream = Stream.DOWNSTREAM
    toxicity: float = Field(1.0, ge=0.0, le=1.0)
    attributes: JsonObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ToxicSpec:
        ATTRIBUTE_MODELS[self.type].model_validate(self.attributes)
        if not self.name:
            object.__setattr__(self, "name", f"{self.type.value}_{self.stream.value}")
        return self

    @property
    def typed(self) -> Any:
        """The attributes as their typed model (LatencyAttributes, ...)."""
        return ATTRIBUTE_MODELS[self.type].model_validate(self.attributes)

    def to_json(self) -> JsonObject:
        attributes = self.typed.model_dump(exclude_none=True)
        return {
            "name": self.name,
            "type": self.type.value,
            "stream": self.stream.value,
            "toxicity": self.toxicity,
            "attributes": attributes,
        }


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "toxic"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_toxic(document: Mapping[str, Any]) -> ToxicSpec:
    """A ToxicSpec from a JSON document, or UsageError saying every field that is wrong."""
    try:
        return ToxicSpec.model_validate(dict(document))
    except ValidationError as exc:
        raise UsageError(f"invalid toxic: {_explain(exc)}") from exc


def update_toxic(current: ToxicSpec, changes: Mapping[str, Any]) -> ToxicSpec:
    """`current` with `changes` laid over it; attributes are merged key by key (as Toxiproxy)."""
    fixed = {"name": current.name, "type": current.type.value}
    for key, value in fixed.items():
        if key in changes and changes[key] != value:
            raise UsageError(f"a toxic's {key} cannot be changed; delete it and add a new one")
    merged: JsonObject = {
        "name": current.name,
        "type": current.type.value,
        "stream": changes.get("stream", current.stream.value),
        "toxicity": changes.get("toxicity", current.toxicity),
        "attributes": {**current.attributes, **dict(changes.get("attributes") or {})},
    }
    unknown = set(changes) - {"name", "type", "stream", "toxicity", "attributes"}
    if unknown:
        raise UsageError(f"invalid toxic update: unknown field(s) {', '.join(sorted(unknown))}")
    return parse_toxic(merged)


DelaySampler = Callable[[], float]
_RESAMPLE_LIMIT = 32


def make_delay_sampler(attributes: LatencyAttributes, rng: random.Random) -> DelaySampler:
    """A function drawing one delay in *seconds* from the configured distribution.

    Delays are never negative. With `max_ms`, a draw above it is redrawn (as
    WireMock's lognormal `maxValue`), at most 32 times, then capped, so a
    sampler always returns in bounded time.
    """
    a = attributes
    draw: Callable[[], float]
    if a.distribution is None:
        low, high = a.latency - a.jitter, a.latency + a.jitter
        draw = (lambda: a.latency) if a.jitter == 0 else (lambda: rng.uniform(low, high))
    elif a.distribution == "fixed":
        median = float(a.median_ms or 0.0)
        draw = lambda: median  # noqa: E731
    elif a.distribution == "uniform":
        lower, upper = float(a.lower_ms or 0.0), float(a.upper_ms or 0.0)
        draw = lambda: rng.uniform(lower, upper)  # noqa: E731
    elif a.distribution == "normal":
        mean, stddev = float(a.mean_ms or 0.0), float(a.stddev_ms or 0.0)
        draw = lambda: rng.gauss(mean, stddev)  # noqa: E731
    else:
        mu, sigma = math.log(max(float(a.median_ms or 0.0), 1e-9)), float(a.sigma or 0.0)
        draw = lambda: rng.lognormvariate(mu, sigma)  # noqa: E731

    cap = a.max_ms

    def sample() -> float:
        value = draw()
        if cap is not None:
            tries = 1
            while value > cap and tries < _RESAMPLE_LIMIT:
                value = draw()
                tries += 1
            value = min(value, cap)
        return max(value, 0.0) / 1000.0

    return sample


def median_delay_ms(attributes: Mapping[str, Any]) -> float:
    """The median delay a latency toxic with these attributes draws (from 1,001 seeded draws)."""
    sample = make_delay_sampler(
        LatencyAttributes.model_validate(dict(attributes)), random.Random(0)
    )
    return sorted(sample() for _ in range(1001))[500] * 1000
