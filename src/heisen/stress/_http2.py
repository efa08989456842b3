"""HTTP/2 single-packet burst (h2c with prior knowledge, or h2 over TLS), on the `h2` state machine.

The same four phases as the HTTP/1.1 barrier in `_burst`, with frames instead
of bytes, and the same rule: hold back something the server needs before it
can dispatch. Many HTTP/2 servers dispatch a stream as soon as its header
block is complete (the HEADERS frame carrying END_HEADERS), body or no body,
so withholding only the final DATA frame (END_STREAM) does not hold them. And
a header block cannot be left open on several streams at once: after a
HEADERS frame without END_HEADERS the peer accepts nothing but that stream's
CONTINUATION frames. So the whole of each stream is held back:

1. *Connect.* Enough connections for the burst, preface and SETTINGS
   exchanged, TCP_NODELAY. Each connection carries at most
   `streams_per_connection` streams and at most what *its own* SETTINGS
   allow (SETTINGS_MAX_CONCURRENT_STREAMS may differ between connections,
   e.g. behind a load balancer) and whose bodies fit its flow-control
   windows (64 KiB per connection unless the server grants more):
   connections are opened in rounds until every request has a place. A connection that could not be opened takes
   its share of requests with it, recorded as "refused" or "timeout"; a
   server that allows no stream at all is SystemUnavailable. Over TLS the
   server must pick "h2" in ALPN, else the burst is SystemUnavailable
   before any request byte is written.
2. *Prime.* Every stream's frames (HEADERS, then DATA with the body and
   END_STREAM; HEADERS with END_STREAM for a bodiless request) are encoded
   into one buffer per connection, nothing of them written; `settle_s` lets
   the server finish the connection setup.
3. *Release.* With the garbage collector paused, each connection writes its
   buffer in a single `write`, which the kernel sends as one TCP segment when
   it fits the MSS (~20-30 requests per packet over the Internet; on loopback
   the MTU is 64 KiB); over TLS that one write is encrypted into records
   sent together. The server can dispatch no stream before it: no byte of
   any stream was on the wire. `release_spread_s` is the window between the
   first and the last connection's write (0 with one connection); every
   stream's `sent_ns` is its connection's write.
4. *Collect*, as for HTTP/1.1; streams still open after `timeout_s` are
   recorded as "timeout". A stream the server refuses (RST_STREAM
   REFUSED_STREAM, or above the last stream id of a GOAWAY) is "refused":
   the server guarantees it did not process it. Other resets are "reset".

Compared with a prime that writes the headers early, the server decodes the
header blocks (HPACK) after the release, inside the window; the figures are
in `bench/bench_burst_release.py`. No stream can be answered before the
release (`early_responses` is 0 by construction); a connection lost before
the release records its streams with `sent_ns=None` (never written) and its
error. Every request gets exactly one record, in request order.

Each stream gets its own record `connection` id: in the history a stream is a
client of its own, since streams run concurrently. A body larger than the
flow-control window of a new connection cannot be sent whole at release:
it is a UsageError, and such a burst should use HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Iterator, Sequence

from heisen.errors import SystemUnavailable, UsageError
from heisen.stress._burst import BurstResult
from heisen.stress._h2_client import H2Client, Stream, connect
from heisen.stress._http1 import connect_error_kind
from heisen.stress._records import RequestRecord
from heisen.stress._request import HttpRequest
from heisen.stress._tls import TlsClient, connect_failure_message

_Share = tuple[H2Client | BaseException, int]
"""A connection (or why it could not be opened) and how many of the requests it carries."""


async def run_h2_burst(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    *,
    timeout_s: float,
    connect_timeout_s: float,
    settle_s: float,
    connection_ids: Iterator[int],
    streams_per_connection: int,
    tls: TlsClient | None = None,
) -> BurstResult:
    """The single-packet burst; called by `run_burst(..., http2=True)`."""
    if tls is not None and tls.alpn is not None and "h2" not in tls.alpn:
        raise UsageError(
            f"an HTTP/2 burst over TLS must offer 'h2' in ALPN, not {list(tls.alpn)}: "
            "TlsClient.make(..., alpn=('h2',))"
        )
    clients: list[H2Client] = []
    try:
        shares = await _connect_all(
            host,
            port,
            requests,
            max(1, streams_per_connection),
            connect_timeout_s,
            tls,
            clients,
        )
        return await _fire(host, port, requests, shares, connection_ids, timeout_s, settle_s)
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.abort()


async def _connect_all(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    per_conn: int,
    timeout_s: float,
    tls: TlsClient | None,
    clients: list[H2Client],
) -> list[_Share]:
    """Open connections in rounds until every request has a place (see phase 1).

    Requests are placed in order: each connection takes as many of the next
    ones as its stream limit and its flow-control windows allow. Every
    connection opened is appended to `clients` (the caller closes them).
    Terminates: each round either places at least one request or raises.
    """
    try:
        first = await connect(host, port, timeout_s, tls)
    except (OSError, TimeoutError) as exc:
        raise SystemUnavailable(connect_failure_message(host, port, exc)) from exc
    clients.append(first)
    shares: list[_Share] = []
    placed = 0
    taken: list[int] = []  # what each connection took: the guess for the next round
    attempts: list[H2Client | BaseException] = [first]
    while True:
        before = placed
        for attempt in attempts:
            if placed == len(requests):
                break
            if isinstance(attempt, H2Client):
                take = attempt.room_for(requests[placed:], per_conn)
                if take > 0:
                    taken.append(take)
            else:  # it carries its guessed share, recorded as its connect error
                take = min(len(requests) - placed, min(taken, default=per_conn))
            if take > 0:
                shares.append((attempt, take))
                placed += take
        if placed == len(requests):
            return shares
        if placed == before:
            raise _unplaceable(host, port, requests, placed, attempts)
        more = math.ceil((len(requests) - placed) / min(taken, default=per_conn))
        opened = await asyncio.gather(
            *(connect(host, port, timeout_s, tls) for _ in range(more)), return_exceptions=True
        )
        clients.extend(c for c in opened if isinstance(c, H2Client))
        for outcome in opened:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation
        attempts = list(opened)


def _unplaceable(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    index: int,
    attempts: list[H2Client | BaseException],
) -> Exception:
    """Why no new connection can take request `index`: no stream allowed, or its body."""
    client = next(a for a in attempts if isinstance(a, H2Client))
    if client.max_streams == 0:
        return SystemUnavailable(
            f"{host}:{port} allows no concurrent HTTP/2 stream on a new connection "
            "(SETTINGS_MAX_CONCURRENT_STREAMS 0); it cannot take a burst now"
        )
    window = min(client.conn.outbound_flow_control_window,
                 client.conn.remote_settings.initial_window_size)  # fmt: skip
    return UsageError(
        f"request {index} has a body of {len(requests[index].body)} bytes, more than the "
        f"HTTP/2 flow-control window {host}:{port} grants a new connection ({window} bytes): "
        "the single-packet burst sends whole requests at release; burst it over HTTP/1.1"
    )


async def _fire(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    shares: list[_Share],
    ids: Iterator[int],
    timeout_s: float,
    settle_s: float,
) -> BurstResult:
    authority = f"{host}:{port}"
    records: list[RequestRecord | None] = [None] * len(requests)
    groups: list[tuple[H2Client, list[tuple[Stream, HttpRequest]]]] = []
    index = 0
    for attempt, count in shares:
        group: list[tuple[Stream, HttpRequest]] = []
        for request in requests[index : index + count]:
            if isinstance(attempt, H2Client):
                stream = Stream(index, next(ids), attempt.conn.get_next_available_stream_id())
                unsent = attempt.encode(stream, request, authority)
                if unsent is None:
                    group.append((stream, request))
                    index += 1
                    continue
                port_used = attempt.local_port
            else:
                stream = Stream(index, next(ids), 0)
                unsent, port_used = connect_error_kind(attempt), None
            records[index] = RequestRecord(
                index, stream.process, request.method, request.path, None, None,
                time.monotonic_ns(), None, unsent, b"", request.body, port_used,
            )  # fmt: skip
            index += 1
        if isinstance(attempt, H2Client) and group:
            groups.append((attempt, group))
    # Taken out of h2's buffer now, so that a write from `data_received` cannot send them early.
    frames = [client.conn.data_to_send() for client, _ in groups]
    if settle_s > 0:
        await asyncio.sleep(settle_s)

    sent: list[int | None] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for (client, _), data in zip(groups, frames, strict=True):
            if client.alive and client.transport is not None:
                sent.append(time.monotonic_ns())
                client.transport.write(data)
            else:
                sent.append(None)
    finally:
        if gc_was_enabled:
            gc.enable()

    waits = [client.all_done for client, _ in groups if client.open_streams]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=timeout_s)
        if pending:
            for client, _ in groups:
                client._fail_all("timeout")
    for (client, group), sent_ns in zip(groups, sent, strict=True):
        for stream, request in group:
            records[stream.index] = RequestRecord(
                stream.index, stream.process, request.method, request.path, None,
                sent_ns,
                stream.done or time.monotonic_ns(), stream.status, stream.error,
                bytes(stream.body), request.body, client.local_port,
            )  # fmt: skip
    final = tuple(r for r in records if r is not None)
    if len(final) != len(requests):
        raise AssertionError(f"burst of {len(requests)} requests made {len(final)} records")
    stamps = [t for t in sent if t is not None]
    spread = (stamps[-1] - stamps[0]) / 1e9 if stamps else 0.0
    return BurstResult(final, spread, len(groups), "h2")
