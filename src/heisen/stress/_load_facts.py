"""What a trial's load did, in the terms invariants and vacuity checks use.

`load_variables` gives `expect:` the trial's outcome counts per request name
and in total (`load.like.ok`, `load.redeem.status["201"]`, `load.total.sent`):

- `sent`: requests written to a connection;
- `ok`: answered 2xx;
- `failed`: definitely failed: answered 1xx/3xx/4xx/5xx, or no connection could be opened;
- `info`: outcome unknown (timeout, reset, closed, protocol error after the request was written):
  it may have taken effect, or may still;
- `queued`: never written (still waiting when the step ended): certainly not taken effect;
- `status`: answers by status code, keys are strings (`status["201"]`).

So `sent == ok + failed + info`, where refused connections count as sent
attempts that failed. `max_in_flight` is the largest number of requests that
were between their write and their response at one instant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from heisen.stress._records import RequestRecord
from heisen.stress._render import RenderedRequest

COUNTS = ("sent", "ok", "failed", "info", "queued")
TOTAL = "total"


def _empty() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTS, 0), "status": {}}


def outcome_of(record: RequestRecord) -> str:
    """One of ok, failed, info, queued (see the module docstring)."""
    if record.error is None:
        return "ok" if record.status is not None and 200 <= record.status < 300 else "failed"
    if record.error == "refused":
        return "failed"
    return "queued" if record.sent_ns is None else "info"


def load_variables(
    records: Sequence[RequestRecord],
    sent: Mapping[int, RenderedRequest],
    names: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """`{request name: counts, "total": counts}`; every name in `names` is present, if only as zeros."""
    variables: dict[str, dict[str, Any]] = {name: _empty() for name in (*names, TOTAL)}
    for record in records:
        rendered = sent.get(record.index)
        name = rendered.name if rendered is not None else None
        outcome = outcome_of(record)
        for key in (name, TOTAL) if name else (TOTAL,):
            counts = variables.setdefault(key, _empty())
            counts[outcome] += 1
            if outcome != "queued":
                counts["sent"] += 1
            if record.status is not None:
                status = str(record.status)
                counts["status"][status] = counts["status"].get(status, 0) + 1
    return variables


def max_in_flight(records: Sequence[RequestRecord]) -> int:
    """The most requests in flight (written, not yet answered) at one instant."""
    edges: list[tuple[int, int]] = []
    for record in records:
        if record.sent_ns is not None:
            edges.append((record.sent_ns, 1))
            edges.append((record.end_ns, -1))
    edges.sort(key=lambda edge: (edge[0], edge[1]))  # an end before a start at the same instant
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most
