"""What heisen keeps of every request it sends: one `RequestRecord` each.

All times are `time.monotonic_ns()` (CLOCK_MONOTONIC, shared by every process
on the machine, so records from worker processes merge on one time line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

BODY_CAP = 64 * 1024
"""Bytes of a response body kept in its record; the rest is read and dropped."""

ErrorKind = Literal["timeout", "reset", "refused", "closed", "protocol"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("timeout", "reset", "refused", "closed", "protocol")
"""timeout: no complete response in time (the request may still take effect);
reset: the peer reset the connection (RST, broken pipe);
refused: no connection could be opened (nothing listening);
closed: the peer closed the connection before the response was complete;
protocol: the response was not valid HTTP."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request and its outcome.

    `connection` is a stable id of the client that sent it, used as the history
    `process`: a connection that failed is never reused, so a request whose
    outcome is unknown (`error` set) ends its process, as Jepsen requires.
    `intended_ns` is when an open model meant to send it (None for closed
    models and bursts); `sent_ns` is None for a request that was still queued
    when the run ended (its error is then "timeout").

    `local_port` is the client side's port of the connection it went on (None
    when no connection was made); `replica` is the index of the replica that
    connection reached behind the service's front proxy, filled in after the
    load by whoever knows it (`with_replicas`), None when unknown (a service
    at a `url:` has no front proxy).
    """

    index: int
    connection: int
    method: str
    path: str
    intended_ns: int | None
    sent_ns: int | None
    end_ns: int
    status: int | None
    error: ErrorKind | None
    body: bytes
    request_body: bytes
    local_port: int | None = None
    replica: int | None = None

    @property
    def ok(self) -> bool:
        """A complete response arrived (whatever its status)."""
        return self.error is None

    @property
    def latency_ns(self) -> int | None:
        """Service time: from the write of the request to the end of its response."""
        if self.sent_ns is None:
            return None
        return self.end_ns - self.sent_ns

    @property
    def corrected_latency_ns(self) -> int | None:
        """Latency from the intended send time (coordinated omission corrected)."""
        start = self.intended_ns if self.intended_ns is not None else self.sent_ns
        if start is None:
            return None
        return self.end_ns - start


def with_replicas(
    records: Sequence[RequestRecord], replica_of_port: Mapping[int, int]
) -> list[RequestRecord]:
    """`records`, each with the replica its connection's local port reached (when known)."""
    if not replica_of_port:
        return list(records)
    return [
        replace(record, replica=replica_of_port.get(record.local_port))
        if record.local_port is not None
        else record
        for record in records
    ]


@dataclass(slots=True)
class SendCount:
    """Requests a load model attempted, counted where it submits them, not from the records.

    A model adds to it as it goes (also when cancelled), so that whoever ran the
    load can check that every request has exactly one record (`missing_records`).
    """

    requests: int = 0


def missing_records(records: Sequence[RequestRecord], requests_sent: int) -> str | None:
    """None when `records` hold exactly one record per request sent; else what is wrong.

    Checks the count and that no request index appears twice (a duplicate
    would hide a lost record in the count).
    """
    indices = {record.index for record in records}
    duplicates = len(records) - len(indices)
    if len(records) == requests_sent and not duplicates:
        return None
    message = f"{requests_sent} requests sent but {len(records)} records"
    if duplicates:
        message += f" ({duplicates} of them duplicates of another request's record)"
    return message + ": the load engine lost or duplicated a record; the trial cannot be judged"
