"""The YAML schema of `architecture.yaml` and `incidents.yaml` (pydantic, strict).

Values are parsed here (durations, CPU quantities, ages, latency shorthands);
references between names are resolved when `_architecture` compiles the model.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from heisen._serialised import JsonObject
from heisen._units import parse_cpu, parse_duration
from heisen.predict._model import STEP_KINDS


def _duration(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    return value


def _cpu(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_cpu(value)
    return value


def _bare_latency(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"fixed": value}
    return value


_DAYS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|w)\s*$")


def _age(value: Any) -> Any:
    if isinstance(value, str) and (match := _DAYS.match(value)):
        return float(match.group(1)) * 86400.0 * (7 if match.group(2) == "w" else 1)
    return _duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]
Age = Annotated[float, BeforeValidator(_age)]
Cores = Annotated[float, BeforeValidator(_cpu)]


class _Strict(BaseModel):
    # NaN and infinities are refused: a NaN weight or an infinite latency would poison the swarm.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class UniformSpec(_Strict):
    low: Duration
    high: Duration


class NormalSpec(_Strict):
    mean: Duration
    sd: Duration


class LognormalSpec(_Strict):
    median: Duration
    sigma: float = Field(ge=0, le=5)


def _exactly_one(model: BaseModel, names: tuple[str, ...], what: str) -> None:
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) != 1:
        choices = ", ".join(names)
        found = f"found {', '.join(given)}" if given else "found none"
        raise ValueError(f"{what} needs exactly one of {choices} ({found})")


class LatencySpec(_Strict):
    fixed: Duration | None = None
    uniform: UniformSpec | None = None
    normal: NormalSpec | None = None
    lognormal: LognormalSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> LatencySpec:
        _exactly_one(self, ("fixed", "uniform", "normal", "lognormal"), "a latency")
        return self


LatencyField = Annotated[LatencySpec, BeforeValidator(_bare_latency)]


class StepSpec(_Strict):
    read: str | None = None
    write: str | None = None
    check: str | None = None
    call: str | None = None
    lock: str | None = None
    unlock: str | None = None
    key: str | None = None
    as_: str | None = Field(default=None, alias="as")
    op: Literal["set", "increment", "decrement", "insert", "delete"] | None = None
    by: int | str | None = None
    from_: str | None = Field(default=None, alias="from")
    latency: LatencyField | None = None
    cpu: Duration = 0.0
    timeout: Duration | None = None
    scope: Literal["global", "replica"] | None = None

    @model_validator(mode="after")
    def _one(self) -> StepSpec:
        _exactly_one(self, STEP_KINDS, "a step")
        return self


class OperationSpec(_Strict):
    endpoint: str | None = None
    body: JsonObject | None = None
    steps: list[StepSpec] = Field(min_length=1)


class ServiceSpec(_Strict):
    replicas: int = Field(default=1, ge=1, le=1000)
    cpu: Cores = 1.0
    operations: dict[str, OperationSpec] = Field(min_length=1)


class ResourceSpec(_Strict):
    kind: Literal["cache", "database", "queue", "service"]


class BurstSpec(_Strict):
    requests: int = Field(ge=1, le=10_000_000)
    window: Duration


class RateSpec(_Strict):
    per_s: float = Field(gt=0)
    requests: int = Field(default=100, ge=1, le=10_000_000)


class ArrivalsSpec(_Strict):
    burst: BurstSpec | None = None
    rate: RateSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> ArrivalsSpec:
        _exactly_one(self, ("burst", "rate"), "arrivals")
        return self


class ZipfSpec(_Strict):
    s: float = Field(gt=0, le=10)
    n: int = Field(ge=1, le=1_000_000)


class KeySpaceSpec(_Strict):
    uniform: int | None = Field(default=None, ge=1, le=1_000_000)
    zipf: ZipfSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> KeySpaceSpec:
        _exactly_one(self, ("uniform", "zipf"), "a key popularity")
        return self


class SweepWorkloadSpec(_Strict):
    """What stress's sweep rounds start from where their `setup:` differs from the scenario's."""

    capacity: dict[str, int] = Field(default_factory=dict)


class WorkloadSpec(_Strict):
    arrivals: ArrivalsSpec
    mix: dict[str, float] = Field(min_length=1)
    keys: dict[str, KeySpaceSpec] = Field(default_factory=dict)
    capacity: dict[str, int] = Field(default_factory=dict)
    sweep: SweepWorkloadSpec | None = None


class ArchitectureSpec(_Strict):
    services: dict[str, ServiceSpec] = Field(min_length=1)
    resources: dict[str, ResourceSpec] = Field(default_factory=dict)
    workload: WorkloadSpec


class IncidentSpec(_Strict):
    boundary: str
    anomaly: (
        Literal["check-then-act", "lost-update", "stale-read", "lock-timeout", "negative-counter"]
        | None
    ) = None
    count: int = Field(default=1, ge=1)
    severity: int = Field(ge=1, le=5)
    age: Age
    note: str | None = None


SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    UniformSpec, NormalSpec, LognormalSpec, LatencySpec, StepSpec, OperationSpec,
    ServiceSpec, ResourceSpec, BurstSpec, RateSpec, ArrivalsSpec, ZipfSpec,
    KeySpaceSpec, SweepWorkloadSpec, WorkloadSpec, ArchitectureSpec,
)  # fmt: skip
