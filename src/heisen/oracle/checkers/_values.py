"""Helpers on history values: hashable forms for model states, short descriptions of calls."""

from __future__ import annotations

import json
from typing import Any

from heisen.oracle.history import Call


def freeze(value: Any) -> Any:
    """A hashable, value-comparable form of a JSON value (lists → tuples, objects → sorted pairs)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    if isinstance(value, dict):
        return ("{}", tuple(sorted((str(k), freeze(v)) for k, v in value.items())))
    return value


def show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe(call: Call) -> str:
    """``read → 1 by process 3 (line 17)``-style description of one call."""
    where = f" (line {call.invoke.index + 1})"
    who = f" by process {call.process}"
    if call.f == "read":
        body = f"read → {show(call.output)}" if call.type.value == "ok" else "read"
    elif call.f == "cas":
        old, new = call.input
        body = f"cas {show(old)} → {show(new)}"
    else:
        body = f"{call.f} {show(call.input)}"
    status = "" if call.type.value == "ok" else f" [{call.type.value}]"
    return f"{body}{status}{who}{where}"
