"""Load models: open (inject, ramp_inject), closed (constant) and pause.

Open models send request i at its *intended* time, whatever the server does;
a request that cannot go out at once (every connection busy, at most
`max_connections`) waits in the pool's queue, and its latency is measured
from the intended time (coordinated omission corrected, as wrk2 and Vegeta
do). `RequestRecord.sent_ns` keeps the uncorrected start as well.

The scheduler wakes at the next intended time and sends every request that is
due, so the intended times stay exact while the actual writes jitter by the
event loop's timer granularity (~1 ms).

Closed models keep `copies` virtual users, each on its own keep-alive
connection, sending the next request as soon as the previous one ends; the
next request is written from inside the response callback.

Every model stops at its duration or its `max_requests`, then waits at most
`timeout_s` for the requests in flight (the rest are recorded as "timeout"),
and closes all its connections on return, error or cancellation. Each request
a model submits has exactly one record, also when the model is cancelled
(requests still queued or in flight are then recorded as "timeout"). `sink`,
when given, receives each record as it completes, so a cancelled run keeps
what it measured; `count`, when given, is incremented by the number of
requests submitted (see `SendCount`).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Iterator

from heisen.stress._pool import Http1Pool
from heisen.stress._records import RequestRecord, SendCount
from heisen.stress._request import HttpRequest
from heisen.stress._tls import TlsClient

MakeRequest = Callable[[int], HttpRequest]
Sink = Callable[[RequestRecord], None]


async def inject(
    rate_per_s: float,
    during_s: float,
    *,
    host: str,
    port: int,
    make_request: MakeRequest,
    max_requests: int | None = None,
    max_connections: int = 256,
    timeout_s: float = 10.0,
    connect_timeout_s: float = 5.0,
    sink: Sink | None = None,
    index_start: int = 0,
    index_step: int = 1,
    connection_id_base: int = 0,
    count: SendCount | None = None,
    tls: TlsClient | None = None,
) -> list[RequestRecord]:
    """Open model: `rate_per_s` requests per second for `during_s` seconds."""
    if rate_per_s <= 0:
        return []
    offsets = (i / rate_per_s for i in itertools.count())
    return await _run_open(
        offsets, during_s, host, port, make_request, max_requests, max_connections,
        timeout_s, connect_timeout_s, sink, index_start, index_step, connection_id_base, count,
        tls,
    )  # fmt: skip


async def ramp_inject(
    from_rate: float,
    to_rate: float,
    during_s: float,
    *,
    host: str,
    port: int,
    make_request: MakeRequest,
    max_requests: int | None = None,
    max_connections: int = 256,
    timeout_s: float = 10.0,
    connect_timeout_s: float = 5.0,
    sink: Sink | None = None,
    index_start: int = 0,
    index_step: int = 1,
    connection_id_base: int = 0,
    count: SendCount | None = None,
    tls: TlsClient | None = None,
) -> list[RequestRecord]:
    """Open model whose rate moves linearly from `from_rate` to `to_rate` over `during_s`."""
    offsets = ramp_offsets(from_rate, to_rate, during_s)
    return await _run_open(
        offsets, during_s, host, port, make_request, max_requests, max_connections,
        timeout_s, connect_timeout_s, sink, index_start, index_step, connection_id_base, count,
        tls,
    )  # fmt: skip


def ramp_offsets(from_rate: float, to_rate: float, during_s: float) -> Iterator[float]:
    """Intended offsets (s) of a linear ramp: request i is sent when ∫rate = i."""
    a, b = max(from_rate, 0.0), max(to_rate, 0.0)
    slope = (b - a) / during_s if during_s > 0 else 0.0
    for i in itertools.count():
        if abs(slope) < 1e-12:
            if a <= 0:
                return
            yield i / a
            continue
        disc = a * a + 2.0 * slope * i
        if disc < 0:
            return  # a falling ramp that has reached zero
        yield (math.sqrt(disc) - a) / slope


async def constant(
    copies: int,
    during_s: float,
    *,
    host: str,
    port: int,
    make_request: MakeRequest,
    max_requests: int | None = None,
    timeout_s: float = 10.0,
    connect_timeout_s: float = 5.0,
    sink: Sink | None = None,
    index_start: int = 0,
    index_step: int = 1,
    connection_id_base: int = 0,
    count: SendCount | None = None,
    tls: TlsClient | None = None,
) -> list[RequestRecord]:
    """Closed model: `copies` users, each sending its next request when the last one ends."""
    records: list[RequestRecord] = []
    if copies <= 0:
        return records
    issued = 0
    stopping = False
    finished = asyncio.Event()

    def issue() -> None:
        nonlocal issued
        index = index_start + issued * index_step
        request = make_request(index)
        issued += 1
        pool.submit(index, request)

    def on_record(record: RequestRecord) -> None:
        records.append(record)
        if sink is not None:
            sink(record)
        if stopping or pool.closed or (max_requests is not None and issued >= max_requests):
            if pool.outstanding == 0:
                finished.set()
        elif time.monotonic_ns() < deadline_ns:
            issue()

    pool = Http1Pool(
        host, port, on_record=on_record, max_connections=copies, timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        connection_ids=itertools.count(connection_id_base + 1), tls=tls,
    )  # fmt: skip
    try:
        await pool.start(copies)
        deadline_ns = time.monotonic_ns() + int(during_s * 1e9)
        for _ in range(copies if max_requests is None else min(copies, max_requests)):
            issue()
        try:
            await asyncio.wait_for(finished.wait(), timeout=during_s)
        except TimeoutError:
            pass
        stopping = True
        await pool.drain(timeout_s)
    finally:
        await pool.close()
        if count is not None:
            count.requests += issued
    return records


async def pause(during_s: float) -> list[RequestRecord]:
    """Send nothing for `during_s` seconds."""
    await asyncio.sleep(max(0.0, during_s))
    return []


async def _run_open(
    offsets: Iterator[float],
    during_s: float,
    host: str,
    port: int,
    make_request: MakeRequest,
    max_requests: int | None,
    max_connections: int,
    timeout_s: float,
    connect_timeout_s: float,
    sink: Sink | None,
    index_start: int,
    index_step: int,
    connection_id_base: int,
    count: SendCount | None,
    tls: TlsClient | None,
) -> list[RequestRecord]:
    records: list[RequestRecord] = []

    def on_record(record: RequestRecord) -> None:
        records.append(record)
        if sink is not None:
            sink(record)

    pool = Http1Pool(
        host, port, on_record=on_record, max_connections=max_connections,
        timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
        connection_ids=itertools.count(connection_id_base + 1), tls=tls,
    )  # fmt: skip
    limit = max_requests if max_requests is not None else math.inf
    sent = 0
    try:
        await pool.start(min(8, max_connections))
        t0 = time.monotonic_ns()
        end_ns = t0 + int(during_s * 1e9)
        offset = next(offsets, None)
        while offset is not None and sent < limit:
            due = t0 + int(offset * 1e9)
            if due >= end_ns:
                break
            now = time.monotonic_ns()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
                continue
            while offset is not None and due <= now and due < end_ns and sent < limit:
                index = index_start + sent * index_step
                request = make_request(index)
                sent += 1
                pool.submit(index, request, intended_ns=due)
                offset = next(offsets, None)
                if offset is not None:
                    due = t0 + int(offset * 1e9)
            await asyncio.sleep(0)
        await pool.drain(timeout_s)
    finally:
        await pool.close()
        if count is not None:
            count.requests += sent
    return records
