"""Durations (`500ms`, `30s`, `2m`), CPU quantities (`250m`, `1.5`) and memory (`256Mi`)."""

from __future__ import annotations

import math
import re

from heisen._yaml import clipped

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)\s*$")
_DURATION_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_CPU = re.compile(r"^\s*(\d+(?:\.\d+)?)(m?)\s*$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")
_MEMORY_FACTOR = {
    None: 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def _finite_float(number: int | float, what: str) -> float:
    try:
        value = float(number)
    except OverflowError:
        raise ValueError(f"{what} must be finite (got a number past 1e308)") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite (got {value})")
    return value


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as `500ms`, `30s`, `2m`, `1h`. A bare number is seconds."""
    if isinstance(text, bool):
        raise ValueError("a duration such as 500ms, 30s or 2m, not a boolean")
    if isinstance(text, int | float):
        seconds = _finite_float(text, "a duration")
    else:
        match = _DURATION.match(text)
        if not match:
            raise ValueError(f"{clipped(text)} is not a duration: write it as 500ms, 30s, 2m or 1h")
        seconds = float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    if not math.isfinite(seconds):
        raise ValueError("a duration must be finite: write it as 500ms, 30s, 2m or 1h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_cpu(text: str | int | float) -> float:
    """Cores in a Kubernetes CPU quantity: `250m` is 0.25, `1.5` is 1.5."""
    if isinstance(text, bool):
        raise ValueError("a CPU quantity such as 250m or 1.5, not a boolean")
    if isinstance(text, int | float):
        value = _finite_float(text, "a CPU quantity")
    else:
        match = _CPU.match(text)
        if not match:
            raise ValueError(
                f"{clipped(text)} is not a CPU quantity: write it as 250m (millicores) or 1.5 (cores)"
            )
        value = float(match.group(1)) / (1000.0 if match.group(2) else 1.0)
    if not math.isfinite(value):
        raise ValueError("a CPU quantity must be finite, such as 250m or 1.5")
    if value <= 0:
        raise ValueError("a CPU quantity must be more than 0")
    return value


def parse_memory(text: str | int) -> int:
    """Bytes in a Kubernetes memory quantity: `256Mi`, `1Gi`, `500M`, or a byte count."""
    if isinstance(text, bool):
        raise ValueError("a memory quantity such as 256Mi, not a boolean")
    if isinstance(text, int):
        value = text
    else:
        match = _MEMORY.match(text)
        if not match:
            raise ValueError(
                f"{clipped(text)} is not a memory quantity: write it as 256Mi, 1Gi or 500M"
            )
        amount = float(match.group(1)) * _MEMORY_FACTOR[match.group(2)]
        if not math.isfinite(amount):
            raise ValueError("a memory quantity must be finite, such as 256Mi")
        value = int(amount)
    if value <= 0:
        raise ValueError("a memory quantity must be more than 0")
    return value


def format_duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"
