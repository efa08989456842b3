"""predict's observe-mode results in words every report shares.

An observing predict (`mode: observe`) read the running system's traffic: its
hotspots name the request, the key or table, the race window and how often the
pattern showed, with the operations that show it (`evidence`); its
`protected` patterns say what guards them. Model-mode outputs are not read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heisen.outputs import Hotspot, PredictOutputs

__all__ = [
    "format_ms",
    "hotspot_line",
    "observed_outputs",
    "protected_line",
    "request_label",
    "where",
    "window_label",
]


def observed_outputs(outputs: Mapping[str, Any] | None) -> PredictOutputs | None:
    """predict's outputs, typed, when they come from observing the system; else None."""
    if not outputs or outputs.get("mode") != "observe":
        return None
    return PredictOutputs.from_manifest(outputs)


def format_ms(value: float) -> str:
    """A duration in ms, three significant figures below a second (`36.7`, `1.82`, `0.004`)."""
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def where(hotspot: Hotspot) -> str:
    """What the pattern touches: the key, the table, else the resource."""
    if hotspot.key:
        return hotspot.key
    if hotspot.table:
        return f"table {hotspot.table}"
    return hotspot.resource


def request_label(hotspot: Hotspot) -> str:
    """The request's endpoint (`POST /events/concert/checkout`), else its name."""
    endpoint = hotspot.endpoint
    if endpoint is not None and (endpoint.method or endpoint.path):
        return f"{endpoint.method} {endpoint.path}".strip()
    return hotspot.request or hotspot.operation


def window_label(hotspot: Hotspot) -> str:
    """The median race window, with its p90 when more than one send showed it."""
    spread = hotspot.window_spread_ms
    median = format_ms(float(hotspot.window_ms))
    if spread is None or spread.samples < 2:
        return f"{median} ms"
    return f"{median} ms (p90 {format_ms(float(spread.p90))} ms)"


def _pattern(hotspot: Hotspot) -> str:
    """`check-then-act on inventory:concert in checkout (with update)`."""
    request = hotspot.request or hotspot.operation
    pair = f" with {hotspot.pair}" if hotspot.pair else ""
    return f"{hotspot.anomaly} on {where(hotspot)} in {request}{pair}"


def hotspot_line(hotspot: Hotspot) -> str:
    """One line: the pattern, its window and in how many sends it showed."""
    seen = f", seen {hotspot.seen}" if hotspot.seen else ""
    return f"{_pattern(hotspot)}: window {window_label(hotspot)}{seen}"


def protected_line(hotspot: Hotspot) -> str:
    """One line: the pattern and what guards it (`... in checkout (by the lock lock:x)`)."""
    return f"{_pattern(hotspot)} (by {hotspot.protected or 'an unnamed guard'})"
