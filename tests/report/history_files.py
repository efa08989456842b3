"""History files as a load phase writes them (invoke, then ok/fail/info per request), for
the report's tests of load over time."""

from __future__ import annotations

import json
from pathlib import Path

S = 1_000_000_000


def write_history(path: Path, seconds: list[list[tuple[float, float, str]]]) -> Path:
    """A history file: for each second, requests ``(start s, latency ms, outcome)``."""
    lines = [{"process": -1, "f": "write", "value": 0, "type": "invoke", "time": 5}]
    base, process = 10**12, 0
    for requests in seconds:
        for start, latency_ms, outcome in requests:
            process += 1
            t0 = base + int(start * S)
            lines.append({"process": process, "f": "read", "type": "invoke", "time": t0})
            lines.append(
                {
                    "process": process,
                    "f": "read",
                    "type": outcome,
                    "time": t0 + int(latency_ms * 1e6),
                }
            )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path
