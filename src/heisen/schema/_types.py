"""Field types shared by the pipeline schema: durations, quantities, thresholds, weights.

Every numeric type here is finite and bounded; the bounds live in `_limits`.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Interval
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

from heisen._thresholds import parse_threshold
from heisen._units import parse_cpu, parse_duration, parse_memory
from heisen.schema import limits as _limits


class Strict(BaseModel):
    """Base of every model users write: unknown keys are errors, numbers are finite."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


# What an editor is told a value may look like (`heisen schema`); validation is the parsers'.
_DURATION_TEXT = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(us|µs|ms|s|m|h)\s*$")]
_CPU_TEXT = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?m?\s*$")]
_MEMORY_TEXT = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")]
_PERCENT_TEXT = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*%\s*$")]


def _duration_within(bounds: _limits.Range) -> Any:
    def check(value: Any) -> float:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError("a duration such as 500ms, 30s or 2m")
        return bounds.check(parse_duration(value))

    seconds = Annotated[float, Field(ge=bounds.low, le=bounds.high)]
    return BeforeValidator(check, json_schema_input_type=_DURATION_TEXT | seconds)


def _cpu(value: Any) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("a CPU quantity such as 250m or 1.5")
    return _limits.CPU.check(parse_cpu(value))


def _memory(value: Any) -> int:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("a memory quantity such as 256Mi")
    return int(_limits.MEMORY.check(parse_memory(value)))


def _threshold(value: str) -> str:
    parse_threshold(value)
    return value


Duration = Annotated[float, _duration_within(_limits.DURATION)]
"""Seconds, written as `500ms`, `30s`, `2m`: 1 ms to 24 h."""

Offset = Annotated[float, _duration_within(_limits.OFFSET)]
"""Seconds that may be zero (when a chaos experiment starts): 0 to 24 h."""

Cpu = Annotated[float, BeforeValidator(_cpu, json_schema_input_type=_CPU_TEXT | float)]
"""Cores, written as `250m` or `1.5`: 10m to 1024."""

Memory = Annotated[
    int, BeforeValidator(_memory, json_schema_input_type=_MEMORY_TEXT | int), PlainSerializer(int)
]
"""Bytes, written as `256Mi`: 4Mi to 1Ti."""

Threshold = Annotated[str, AfterValidator(_threshold)]
"""`p99 < 250ms`, `errors < 1%`: parsed when the pipeline loads."""

MixWeight = Annotated[float, AfterValidator(_limits.MIX_WEIGHT.check)]
"""A request's weight in a mix: finite, more than 0."""

HttpStatus = Annotated[
    int, Interval(ge=int(_limits.HTTP_STATUS.low), le=int(_limits.HTTP_STATUS.high))
]
"""A status code, 100 to 599."""


def share(low: float, high: float) -> Any:
    """A share written as `1%` or `0.01`, from `low` to `high` (both as fractions)."""

    def parse(value: Any) -> float:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                value = float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(f"{value!r} is not a percentage such as 1% or 0.5%") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a share such as 1% or 0.01")
        if not low <= value <= high:
            raise ValueError(f"must be {low * 100:g}% to {high * 100:g}% (got {value * 100:g}%)")
        return float(value)

    fraction = Annotated[float, Field(ge=low, le=high)]
    return BeforeValidator(parse, json_schema_input_type=_PERCENT_TEXT | fraction)
