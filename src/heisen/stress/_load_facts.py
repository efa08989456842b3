"""What a trial's load did, in the terms invariants and vacuity checks use.

`load_variables` gives `expect:` the trial's outcome counts per request name
and in total (`load.like.ok`, `load.redeem.status["201"]`, `load.total.sent`):

- `sent`: requests written to a connection;
- `ok`: answered 2xx, or one of the request's `expect_status:` when it has one
  (`expect_status: [200, 409]`: a 409 "sold out" is an answer the scenario expects);
- `failed`: definitely failed: answered any other status, or no connection could be opened;
- `info`: outcome unknown (timeout, reset, closed, protocol error after the request was written):
  it may have taken effect, or may still;
- `queued`: never written (still waiting when the step ended): certainly not taken effect;
- `status`: answers by status code, keys are strings (`status["201"]`).

So `sent == ok + failed + info`, where refused connections count as sent
attempts that failed.

`replicas` holds the same counts (`sent`, `ok`, `failed`, `info`, `status`)
per replica that served the requests, keyed by the replica's index as a
string (`load.redeem.replicas["0"].ok`), so a promise each replica keeps on
its own is an invariant: `all(r["ok"] <= 5 for r in load.redeem.replicas.values())`.
A request that reached no replica (refused, never sent) or whose replica is
unknown (a service at a `url:`) counts in no replica; `replicas` is then `{}`. `max_in_flight` is the largest number of requests that
were between their write and their response at one instant.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal, TypedDict

from heisen.stress._records import RequestRecord
from heisen.stress._render import RenderedRequest

Outcome = Literal["ok", "failed", "info", "queued"]
TOTAL = "total"


class ReplicaCounts(TypedDict):
    """The requests one replica served, by outcome, and its answers by status code."""

    sent: int
    ok: int
    failed: int
    info: int
    status: dict[str, int]


class Counts(TypedDict):
    """`load.<request>` (or `load.total`): outcomes, answers by status, and the same per replica."""

    sent: int
    ok: int
    failed: int
    info: int
    queued: int
    status: dict[str, int]
    replicas: dict[str, ReplicaCounts]


def empty_counts() -> Counts:
    return {
        "sent": 0, "ok": 0, "failed": 0, "info": 0, "queued": 0, "status": {}, "replicas": {},
    }  # fmt: skip


def _count_status(status_counts: dict[str, int], status: int | None) -> None:
    if status is not None:
        key = str(status)
        status_counts[key] = status_counts.get(key, 0) + 1


def outcome_of(record: RequestRecord, expected: Collection[int] | None = None) -> Outcome:
    """One of ok, failed, info, queued (see the module docstring); `expected`: the statuses
    that are ok for this record's request (None: 2xx)."""
    if record.error is None:
        if record.status is None:
            return "failed"
        ok = record.status in expected if expected else 200 <= record.status < 300
        return "ok" if ok else "failed"
    if record.error == "refused":
        return "failed"
    return "queued" if record.sent_ns is None else "info"


def load_variables(
    records: Sequence[RequestRecord],
    sent: Mapping[int, RenderedRequest],
    names: Sequence[str] = (),
    expected: Mapping[str, Collection[int]] | None = None,
) -> dict[str, Counts]:
    """`{request name: counts, "total": counts}`; every name in `names` is present, if only as zeros.

    Each counts mapping has `replicas`: `{"0": counts of replica 0, ...}` (see the module docstring).
    `expected`: each request name's `expect_status:`, where it has one.
    """
    variables = {name: empty_counts() for name in (*names, TOTAL)}
    statuses = expected or {}
    for record in records:
        rendered = sent.get(record.index)
        name = rendered.name if rendered is not None else None
        outcome = outcome_of(record, statuses.get(name) if name else None)
        replica = None if record.replica is None else str(record.replica)
        for key in (name, TOTAL) if name else (TOTAL,):
            counts = variables.setdefault(key, empty_counts())
            counts[outcome] += 1
            if outcome != "queued":
                counts["sent"] += 1
            _count_status(counts["status"], record.status)
            if replica is not None and outcome != "queued":
                per_replica = counts["replicas"].get(replica)
                if per_replica is None:
                    per_replica = {"sent": 0, "ok": 0, "failed": 0, "info": 0, "status": {}}
                    counts["replicas"][replica] = per_replica
                per_replica[outcome] += 1
                per_replica["sent"] += 1
                _count_status(per_replica["status"], record.status)
    return variables


def add_counts(into: Counts, more: Counts) -> None:
    """Add `more`'s outcome counts to `into` (statuses and replicas are left alone)."""
    for key in ("sent", "ok", "failed", "info", "queued"):
        into[key] += more[key]


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
