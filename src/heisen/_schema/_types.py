"""Field types shared by the pipeline schema: durations, quantities, templates."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from heisen._units import parse_cpu, parse_duration, parse_memory


class Strict(BaseModel):
    """Base of every model users write: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration(value: Any) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("a duration such as 500ms, 30s or 2m")
    return parse_duration(value)


def _cpu(value: Any) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("a CPU quantity such as 250m or 1.5")
    return parse_cpu(value)


def _memory(value: Any) -> int:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("a memory quantity such as 256Mi")
    return parse_memory(value)


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds, written as `500ms`, `30s`, `2m`."""

Cpu = Annotated[float, BeforeValidator(_cpu)]
"""Cores, written as `250m` or `1.5`."""

Memory = Annotated[int, BeforeValidator(_memory), PlainSerializer(int)]
"""Bytes, written as `256Mi`."""
