"""The compiled architecture the swarm simulates: frozen dataclasses, durations in seconds,
references resolved. `_architecture` builds them from what `_architecture_spec` validated."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from heisen import outputs

STEP_KINDS = ("read", "write", "check", "call", "lock", "unlock")


class StepKind(StrEnum):
    READ = "read"
    WRITE = "write"
    CHECK = "check"
    CALL = "call"
    LOCK = "lock"
    UNLOCK = "unlock"


class Anomaly(StrEnum):
    CHECK_THEN_ACT = "check-then-act"
    LOST_UPDATE = "lost-update"
    STALE_READ = "stale-read"
    LOCK_TIMEOUT = "lock-timeout"
    NEGATIVE_COUNTER = "negative-counter"


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution in seconds: `fixed(a)`, `uniform(a, b)`, `normal(a=mean, b=sd)`, `lognormal(a=median, b=sigma)`."""

    kind: Literal["fixed", "uniform", "normal", "lognormal"]
    a: float
    b: float = 0.0

    def mean(self) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "normal":
            return max(self.a, 0.0)
        return self.a * math.exp(self.b**2 / 2)

    def variance(self) -> float:
        if self.kind == "fixed":
            return 0.0
        if self.kind == "uniform":
            return (self.b - self.a) ** 2 / 12
        if self.kind == "normal":
            return self.b**2
        return (math.exp(self.b**2) - 1) * self.a**2 * math.exp(self.b**2)

    def describe(self) -> str:
        ms = 1e3
        if self.kind == "fixed":
            return f"fixed {self.a * ms:g}ms"
        if self.kind == "uniform":
            return f"uniform {self.a * ms:g}..{self.b * ms:g}ms"
        if self.kind == "normal":
            return f"normal mean {self.a * ms:g}ms sd {self.b * ms:g}ms"
        return f"lognormal median {self.a * ms:g}ms sigma {self.b:g}"


ZERO_LATENCY = Latency("fixed", 0.0)


@dataclass(frozen=True, slots=True)
class Check:
    """`name op amount`: `amount` is an integer literal or a value of the operation's body."""

    name: str
    operator: Literal[">=", ">", "<=", "<", "==", "!="]
    amount: int


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    target: str | None  # resource (read, write, lock, unlock) or service (call)
    latency: Latency = ZERO_LATENCY
    cpu_s: float = 0.0
    key: str | None = None
    alias: str | None = None
    op: str | None = None
    amount: int = 1
    source: str | None = None
    check: Check | None = None
    timeout_s: float | None = None
    scope: Literal["global", "replica"] = "global"


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    body: Mapping[str, Any] | None = None

    def to_output(self) -> outputs.Endpoint:
        return outputs.Endpoint.from_manifest(
            {"method": self.method, "path": self.path, "body": self.body}
        )


@dataclass(frozen=True, slots=True)
class Operation:
    service: str
    name: str
    steps: tuple[Step, ...]
    endpoint: Endpoint | None = None

    @property
    def id(self) -> str:
        return f"{self.service}.{self.name}"


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    replicas: int
    cpu: float
    operations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    kind: Literal["cache", "database", "queue", "service"]


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Popularity of one key placeholder: `uniform` over `n` values, or `zipf` with exponent `s`."""

    n: int
    zipf_s: float | None = None


@dataclass(frozen=True, slots=True)
class Arrivals:
    """`burst`: `requests` spread uniformly over `window_s`; `rate`: a Poisson stream of `per_s`;
    `even`: one request every `window_s / requests` (a sweep's round with `spread:`)."""

    kind: Literal["burst", "rate", "even"]
    requests: int
    window_s: float = 0.0
    per_s: float = 0.0

    def span_s(self, requests: int | None = None) -> float:
        count = self.requests if requests is None else requests
        return count / self.per_s if self.kind == "rate" else self.window_s


@dataclass(frozen=True, slots=True)
class Workload:
    arrivals: Arrivals
    mix: Mapping[str, float]
    keys: Mapping[str, KeySpace]
    capacity: Mapping[str, int]
    sweep_capacity: Mapping[str, int] | None = None  # calibration: what the sweep's setup leaves


@dataclass(frozen=True, slots=True)
class Architecture:
    services: Mapping[str, Service]
    resources: Mapping[str, Resource]
    operations: Mapping[str, Operation]  # by id, "service.operation"
    workload: Workload
    source: str = "<architecture>"

    def boundary(self, service: str, target: str) -> str:
        return f"{service} → {target}"


@dataclass(frozen=True, slots=True)
class Incident:
    boundary: str
    severity: int
    age_s: float
    count: int = 1
    anomaly: Anomaly | None = None
