"""Per-second figures of a load phase, computed from the history file it left in the run dir.

A load phase writes ``<phase>-history.jsonl`` (one JSON operation a line:
``invoke`` then ``ok``/``fail``/``info`` per request, ``time`` in monotonic
nanoseconds, ``process`` the client connection). The manifest keeps only a
phase's totals, so the report rebuilds the per-second series from that file:
requests completed, p50 and p99 latency (invoke to completion), and the
completions that were not ``ok``. Only the requests whose template declares
``history:`` are in the file, so the series covers those.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Second", "history_file", "per_second", "percentile", "read_series"]

_NS_PER_S = 1_000_000_000
_MAX_LINES = 2_000_000  # a bigger file is read up to here: the chart stays a chart


@dataclass(frozen=True, slots=True)
class Second:
    """One second of load, ``t_s`` seconds after the phase's first request."""

    t_s: int
    requests: int
    p50_ms: float | None
    p99_ms: float | None
    failed: int
    unknown: int


def history_file(run_dir: Path, phase: str, artifacts: Iterable[str]) -> Path | None:
    """The phase's history file: the artifact named ``*-history.jsonl``, else ``<phase>-history.jsonl``."""
    names = [a for a in artifacts if a.endswith("-history.jsonl") and "/" not in a]
    for name in [*names, f"{phase}-history.jsonl"]:
        path = run_dir / name
        if path.is_file():
            return path
    return None


def read_series(path: Path) -> list[Second]:
    """The per-second series of one history file; empty when it holds no completed request."""
    return per_second(_operations(path))


def _operations(path: Path) -> list[dict[str, object]]:
    ops: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number >= _MAX_LINES:
                break
            try:
                op = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: the rest still counts
            if isinstance(op, dict):
                ops.append(op)
    return ops


def per_second(operations: Sequence[dict[str, object]]) -> list[Second]:
    """Pair each invoke with its connection's next completion and bucket by completion second."""
    started: dict[object, int] = {}
    done: list[tuple[int, int, str]] = []  # (end ns, latency ns, type)
    for op in operations:
        process, kind, time = op.get("process"), op.get("type"), op.get("time")
        if process == -1 or not isinstance(time, int):
            continue  # -1: the initial values, not a request
        if kind == "invoke":
            started[process] = time
        elif process in started and isinstance(kind, str):
            begin = started.pop(process)
            done.append((time, time - begin, kind))
    if not done:
        return []
    origin = min(end - latency for end, latency, _ in done)
    buckets: dict[int, list[tuple[int, str]]] = {}
    for end, latency, kind in done:
        buckets.setdefault((end - origin) // _NS_PER_S, []).append((latency, kind))
    last = max(buckets)
    return [_second(t, buckets.get(t, [])) for t in range(last + 1)]


def _second(t: int, completions: list[tuple[int, str]]) -> Second:
    latencies = sorted(latency / 1e6 for latency, _ in completions)
    return Second(
        t_s=t,
        requests=len(completions),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        failed=sum(1 for _, kind in completions if kind == "fail"),
        unknown=sum(1 for _, kind in completions if kind == "info"),
    )


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile of sorted values; None for none."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
