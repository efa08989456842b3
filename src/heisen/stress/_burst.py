"""The synchronized burst: N requests released so that they reach the server together.

Design of the barrier (HTTP/1.1, last-byte-of-the-head synchronization)
-----------------------------------------------------------------------
A naive `gather` of N requests spreads them over the time the client takes
to build and write each one (~100 µs of Python per request, 20 ms for 200).
The barrier moves all of that work before the critical window:

1. *Connect.* One connection per request, all opened before anything is sent
   (TCP_NODELAY, so a small write leaves at once as its own segment).
2. *Prime.* Each request's head is written except its very last byte, the
   final `\n` of the blank line that ends it. No HTTP/1.1 server can dispatch
   a request before it has the whole head: not one that waits for the body
   (most frameworks' default), and not one that dispatches on the head and
   never reads the body (aiohttp, Node, Go's net/http: withholding a *body*
   byte lets those answer before the release, and such a burst is no burst).
   The client then waits until every prefix has left its send buffer, and
   `settle_s` more so that the server has read them (by default 1 ms plus
   0.1 ms per connection, at most 20 ms: `default_settle_s`).
3. *Release.* With the garbage collector paused, the rest of every request
   (the held `\n` and the whole body) is written straight to each socket,
   one write each, and the time of each write is noted (`_release`). The
   window the server sees is the length of this loop: `release_spread_s`.
   The kernel's own work per segment bounds it (5-10 µs on loopback), so a
   burst of `PARALLEL_FROM` connections or more is released by two threads
   on two cores when the process may use four (`release_threads`: two stay
   for the server). Sending
   the body at release costs the bytes of the body in that loop;
   `bench/bench_burst_release.py` measures it.
4. *Collect.* Responses are read as they come; a request without a response
   after `timeout_s` is recorded as "timeout".

A response that completes before the release (a server that answers a
request it cannot have parsed: a misbehaving server, or a proxy that
answers for it) is recorded, never dropped: its `sent_ns` is the time its
prefix was written (the earliest the server could have acted on it), its
tail is not sent, and it is counted in `BurstResult.early_responses`. The
same holds for a connection that fails before the release.

Invariants: every request gets exactly one record, in request order, and
every connection opened is closed on return, on error and on cancellation
(the `finally` aborts them). It terminates: each phase is bounded by
`connect_timeout_s`, the write-buffer wait by `timeout_s`, the collection by
`timeout_s`. HTTP/2 lives in `_http2`, with the same shape and the same
rule: what is held back is something the server needs before it can
dispatch.

Over TLS (`tls=TlsClient`) the connection's TLS layer runs on memory
buffers (`_tls_stream`): the prefix goes out as its own record(s) with the
prime, and the tail is sealed into a record of its own then too, all of
which but its last byte is sent with the prime. The release writes that
one byte straight to the socket, as for a plain connection, so a TLS burst
is as tight as a plain one. A server authenticates and decrypts whole
records only, so it can act on nothing of the tail before its last byte
(`tests/stress/test_burst_tls_h2.py` checks what it decrypted and when).
The handshake belongs to phase 1, out of the window. HTTP/2 over TLS (ALPN
"h2") writes each connection's frames in one `write`, hence one send of
its records.

To extend it (io_uring batching), keep phase 3 free of anything but the
writes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from heisen.errors import SystemUnavailable
from heisen.stress._http1 import Http1Connection, connect_error_kind, open_connection
from heisen.stress._records import ErrorKind, RequestRecord
from heisen.stress._release import Held, descriptor, release, release_threads, spread_ns
from heisen.stress._request import HttpRequest
from heisen.stress._tls import TlsClient, connect_failure_message
from heisen.stress._tls_stream import TlsStream, tls_stream


@dataclass(frozen=True, slots=True)
class BurstResult:
    """Records in request order; `release_spread_s` is the client's release-write window.

    `early_responses`: requests answered before their release (see the module
    docstring); 0 for any server that needs the whole head to dispatch.
    """

    records: tuple[RequestRecord, ...]
    release_spread_s: float
    connections: int
    protocol: str = "http/1.1"
    early_responses: int = 0
    release_threads: int = 1


def default_settle_s(connections: int) -> float:
    """How long primed connections rest before the release: 1 ms + 0.1 ms each, at most 20 ms.

    Time for the server (or a proxy in front of it) to accept every
    connection and read every prefix, so that this work stays out of the
    release window; small bursts, the most common in a proof of many
    trials, stay cheap.
    """
    return min(0.02, 0.001 + 0.0001 * connections)


async def run_burst(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    *,
    http2: bool = False,
    timeout_s: float = 10.0,
    connect_timeout_s: float = 5.0,
    settle_s: float | None = None,
    connection_ids: Iterator[int] | None = None,
    streams_per_connection: int = 100,
    tls: TlsClient | None = None,
    release_threads: int | None = None,
) -> BurstResult:
    """Send `requests` as one synchronized burst; see the module docstring.

    `settle_s` None: `default_settle_s` of the connections opened.
    `release_threads` (HTTP/1.1, plain or TLS) None: 2 for a large burst on a
    process allowed four cores or more, else 1 (`_release.release_threads`).

    With `tls`, every connection is TLS (HTTP/2: ALPN "h2", `:scheme` https);
    `Host`/`:authority` stay `host:port`. Raises SystemUnavailable when no
    connection at all can be opened, naming the TLS problem when there is
    one (certificate verification, a server that does not pick "h2"). When
    only some connect attempts fail, their requests are recorded as
    "refused" or "timeout" and the rest of the burst goes ahead.
    """
    ids = connection_ids if connection_ids is not None else itertools.count(1)
    if not requests:
        return BurstResult((), 0.0, 0, "h2" if http2 else "http/1.1")
    if http2:
        from heisen.stress._http2 import run_h2_burst

        return await run_h2_burst(
            host,
            port,
            requests,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            settle_s=(
                settle_s
                if settle_s is not None
                else default_settle_s(-(-len(requests) // max(1, streams_per_connection)))
            ),
            connection_ids=ids,
            streams_per_connection=streams_per_connection,
            tls=tls,
        )
    settle = settle_s if settle_s is not None else default_settle_s(len(requests))
    return await _run_http1_burst(
        host, port, requests, timeout_s, connect_timeout_s, settle, ids, tls, release_threads
    )


async def _run_http1_burst(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    timeout_s: float,
    connect_timeout_s: float,
    settle_s: float,
    ids: Iterator[int],
    tls: TlsClient | None,
    threads: int | None,
) -> BurstResult:
    n = len(requests)
    conn_ids = [next(ids) for _ in range(n)]
    opened = await asyncio.gather(
        *(open_connection(host, port, cid, connect_timeout_s, tls) for cid in conn_ids),
        return_exceptions=True,
    )
    conns = [c for c in opened if isinstance(c, Http1Connection)]
    try:
        if not conns:
            first = next(e for e in opened if isinstance(e, BaseException))
            if isinstance(first, asyncio.CancelledError):
                raise first
            raise SystemUnavailable(connect_failure_message(host, port, first)) from first
        return await _fire(host, port, requests, opened, conn_ids, timeout_s, settle_s, threads)
    finally:
        for conn in conns:
            conn.abort()


async def _fire(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    opened: list[Http1Connection | BaseException],
    conn_ids: list[int],
    timeout_s: float,
    settle_s: float,
    threads: int | None,
) -> BurstResult:
    loop = asyncio.get_running_loop()
    authority = f"{host}:{port}"
    n = len(requests)
    records: list[RequestRecord | None] = [None] * n
    primed: list[int | None] = [None] * n
    sent: list[int | None] = [None] * n
    early = 0
    remaining = 0
    all_done = loop.create_future()

    def finisher(i: int) -> object:
        def done(
            conn: Http1Connection, status: int | None, body: bytes, error: ErrorKind | None
        ) -> None:
            nonlocal remaining, early
            req = requests[i]
            sent_ns = sent[i]
            if sent_ns is None:  # completed before its release: see the module docstring
                sent_ns = primed[i]
                early += status is not None
            records[i] = RequestRecord(
                i, conn.id, req.method, req.path, None, sent_ns, time.monotonic_ns(),
                status, error, body, req.body, conn.local_port,
            )  # fmt: skip
            remaining -= 1
            if remaining == 0 and not all_done.done():
                all_done.set_result(None)

        return done

    # Phase 2: prime every live connection with its head but the head's last byte.
    tails: list[tuple[int, Http1Connection, bytes]] = []
    sealed: list[TlsStream] = []
    for i, (req, conn) in enumerate(zip(requests, opened, strict=True)):
        if not isinstance(conn, Http1Connection):
            kind = connect_error_kind(conn)
            records[i] = RequestRecord(
                i, conn_ids[i], req.method, req.path, None, None, time.monotonic_ns(),
                None, kind, b"", req.body,
            )  # fmt: skip
            continue
        if conn.closed or conn.transport is None or conn.transport.is_closing():
            records[i] = RequestRecord(
                i, conn.id, req.method, req.path, None, None, time.monotonic_ns(),
                None, "closed", b"", req.body, conn.local_port,
            )  # fmt: skip
            continue
        prefix, tail = split_at_head_end(req.encode_http1(authority))
        remaining += 1
        primed[i] = time.monotonic_ns()
        conn.send_prefix(prefix, finisher(i), head=req.method == "HEAD")  # type: ignore[arg-type]
        stream = tls_stream(conn.transport)
        if stream is not None and stream.raw is not None:
            record = stream.seal(tail)
            stream.raw.write(record[:-1])
            tail = record[-1:]
            sealed.append(stream)
        tails.append((i, conn, tail))
    await _flushed([c for _, c, _ in tails], timeout_s)
    if settle_s > 0:
        await asyncio.sleep(settle_s)

    # Phase 3: release. Nothing but the writes and one clock read each.
    held: list[tuple[int, Held]] = [
        (i, _held(conn.transport, tail))
        for i, conn, tail in tails
        if conn.in_flight and conn.transport is not None and not conn.transport.is_closing()
    ]
    chosen = threads if threads is not None else release_threads([h for _, h in held])
    release([h for _, h in held], chosen)
    for i, h in held:
        sent[i] = h.sent_ns
    for stream in sealed:
        stream.resume()

    # Phase 4: collect.
    if remaining > 0:
        try:
            await asyncio.wait_for(asyncio.shield(all_done), timeout=timeout_s)
        except TimeoutError:
            for _, conn, _ in tails:
                if conn.in_flight:
                    conn.fail("timeout")
    final = tuple(r for r in records if r is not None)
    if len(final) != n:
        raise AssertionError(f"burst of {n} requests made {len(final)} records")
    return BurstResult(
        final,
        spread_ns([h for _, h in held]) / 1e9,
        len(tails),
        early_responses=early,
        release_threads=chosen,
    )


def _held(transport: asyncio.Transport, tail: bytes) -> Held:
    """A plain connection's tail, or the last byte of a TLS connection's sealed tail record."""
    stream = tls_stream(transport)
    if stream is not None and stream.raw is not None:
        return Held(stream.raw, tail, descriptor(stream.raw))
    return Held(transport, tail, descriptor(transport))


def split_at_head_end(data: bytes) -> tuple[bytes, bytes]:
    """(everything before the head's last byte, that byte and the body): the burst's hold."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ValueError("an HTTP/1.1 request without the blank line that ends its head")
    return data[: end + 3], data[end + 3 :]


async def _flushed(conns: list[Http1Connection], timeout_s: float) -> None:
    """Wait until every connection's send buffer is empty (bounded by `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(c.transport is None or c.transport.get_write_buffer_size() == 0 for c in conns):
            return
        await asyncio.sleep(0.001)
