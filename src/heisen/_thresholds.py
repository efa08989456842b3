"""k6-style thresholds over a phase's load summary: `p99 < 250ms`, `errors < 1%`, `rps > 100`."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from heisen._units import parse_duration
from heisen._yaml import clipped

_THRESHOLD = re.compile(
    r"^\s*(p50|p75|p90|p95|p99|p99\.9|max|errors|rps|violations)\s*(<=|>=|<|>|==)\s*(\S+)\s*$"
)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    op: str
    limit: float

    def observed(self, outputs: Mapping[str, Any]) -> float:
        if self.metric.startswith("p") or self.metric == "max":
            return float(outputs.get("latency_ms", {}).get(self.metric, 0.0))
        if self.metric == "errors":
            requests = outputs.get("requests") or 0
            failed = sum(outputs.get("errors", {}).values())
            failed += sum(
                n for code, n in outputs.get("status_codes", {}).items() if code.startswith("5")
            )
            return (failed / requests * 100) if requests else 0.0
        if self.metric == "violations":
            return float(outputs.get("violation_rate", 0.0)) * 100
        return float(outputs.get("rps", 0.0))

    def holds(self, outputs: Mapping[str, Any]) -> bool:
        return _OPERATORS[self.op](self.observed(outputs), self.limit)


def parse_threshold(text: str) -> Threshold:
    match = _THRESHOLD.match(text)
    if not match:
        raise ValueError(
            f"{clipped(text)} is not a threshold: write METRIC OP VALUE, e.g. 'p99 < 250ms', 'errors < 1%', 'rps > 100' "
            "(metrics: p50 p75 p90 p95 p99 p99.9 max errors rps violations)"
        )
    metric, op, raw = match.groups()
    if metric.startswith("p") or metric == "max":
        try:
            limit = parse_duration(raw) * 1000.0
        except ValueError as exc:
            raise ValueError(
                f"{clipped(text)}: {metric} takes a duration such as 250ms ({exc})"
            ) from None
    else:
        number = raw.removesuffix("%") if metric in ("errors", "violations") else raw
        try:
            limit = float(number)
        except ValueError:
            unit = "a percentage such as 1%" if metric != "rps" else "a number such as 100"
            raise ValueError(
                f"{clipped(text)}: {metric} takes {unit}, not {clipped(raw)}"
            ) from None
        if not math.isfinite(limit):
            raise ValueError(
                f"{clipped(text)}: the limit must be a finite number, not {clipped(raw)}"
            )
    return Threshold(text.strip(), metric, op, limit)


def breached(thresholds: list[str], outputs: Mapping[str, Any]) -> list[str]:
    messages = []
    for text in thresholds:
        threshold = parse_threshold(text)
        if not threshold.holds(outputs):
            unit = (
                "ms"
                if threshold.metric.startswith("p") or threshold.metric == "max"
                else ("%" if threshold.metric in ("errors", "violations") else "")
            )
            messages.append(
                f"threshold '{threshold.text}' breached: {threshold.metric} was "
                f"{threshold.observed(outputs):.3g}{unit}"
            )
    return messages
