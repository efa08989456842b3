"""Per-second figures of a load phase, computed from the files it left in the run dir.

A load phase writes ``<phase>-load.jsonl``, every request it wrote: one line
``{"start": ns, "end": ns, "outcome": "ok" | "failed" | "info"}``
(monotonic nanoseconds). Runs from before that file kept only
``<phase>-history.jsonl`` (``invoke`` then ``ok``/``fail``/``info`` per
request, ``process`` the client connection), which holds the requests whose
template declares ``history:``; the report falls back on it. The manifest
keeps only a phase's totals, so the report rebuilds the per-second series:
requests completed, p50 and p99 latency (write to completion), and the
completions that were not ``ok``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Second", "load_file", "per_second", "percentile", "read_series"]

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


def load_file(run_dir: Path, phase: str, artifacts: Iterable[str]) -> Path | None:
    """The phase's request log (``*-load.jsonl``), else its history file (older runs)."""
    names = [a for a in artifacts if "/" not in a]
    ordered = [a for a in names if a.endswith("-load.jsonl")] + [f"{phase}-load.jsonl"]
    ordered += [a for a in names if a.endswith("-history.jsonl")] + [f"{phase}-history.jsonl"]
    for name in ordered:
        path = run_dir / name
        if path.is_file():
            return path
    return None


def read_series(path: Path) -> list[Second]:
    """The per-second series of one request log or history file; empty without a completion."""
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


_KINDS = {"ok": "ok", "failed": "fail", "fail": "fail", "info": "info"}


def per_second(operations: Sequence[dict[str, object]]) -> list[Second]:
    """Bucket each request by its completion second.

    A request-log line carries its own start and end; history operations pair
    each invoke with its connection's next completion.
    """
    started: dict[object, int] = {}
    done: list[tuple[int, int, str]] = []  # (end ns, latency ns, type)
    for op in operations:
        start, end, outcome = op.get("start"), op.get("end"), op.get("outcome")
        if isinstance(start, int) and isinstance(end, int) and outcome in _KINDS:
            done.append((end, end - start, _KINDS[str(outcome)]))
            continue
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
