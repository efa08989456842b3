"""HTTP/2 single-packet burst (prior-knowledge h2c), built on the `h2` state machine.

The same four phases as the HTTP/1.1 barrier in `_burst`, with frames instead
of bytes, and the same rule: hold back something the server needs before it
can dispatch. Many HTTP/2 servers dispatch a stream as soon as its header
block is complete (the HEADERS frame carrying END_HEADERS), body or no body,
so withholding only the final DATA frame (END_STREAM) does not hold them. And
a header block cannot be left open on several streams at once: after a
HEADERS frame without END_HEADERS the peer accepts nothing but that stream's
CONTINUATION frames. So the whole of each stream is held back:

1. *Connect.* Enough connections for the burst (`streams_per_connection`, at
   most the server's SETTINGS_MAX_CONCURRENT_STREAMS), preface and SETTINGS
   exchanged, TCP_NODELAY.
2. *Prime.* Every stream's frames (HEADERS, then DATA with the body and
   END_STREAM; HEADERS with END_STREAM for a bodiless request) are encoded
   into one buffer per connection, nothing of them written; `settle_s` lets
   the server finish the connection setup.
3. *Release.* With the garbage collector paused, each connection writes its
   buffer in a single `write`, which the kernel sends as one TCP segment when
   it fits the MSS (~20-30 requests per packet over the Internet; on loopback
   the MTU is 64 KiB). The server can dispatch no stream before it: no byte
   of any stream was on the wire. `release_spread_s` is the window between
   the first and the last connection's write (0 with one connection).
4. *Collect*, as for HTTP/1.1; streams still open after `timeout_s` are
   recorded as "timeout".

Compared with a prime that writes the headers early, the server decodes the
header blocks (HPACK) after the release, inside the window; the figures are
in `bench/bench_burst_release.py`. No stream can be answered before the
release (`early_responses` is 0 by construction); a connection lost before
the release records its streams with `sent_ns=None` (never written) and its
error.

Each stream gets its own record `connection` id: in the history a stream is a
client of its own, since streams run concurrently. Bodies must fit the
initial flow-control window (64 KiB per connection); larger bursts should use
HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import gc
import math
import socket
import time
from collections.abc import Iterator, Sequence

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import ProtocolError

from heisen.errors import SystemUnavailable
from heisen.stress._burst import BurstResult
from heisen.stress._http1 import local_port
from heisen.stress._pool import unreachable_message
from heisen.stress._records import BODY_CAP, ErrorKind, RequestRecord
from heisen.stress._request import HttpRequest

_SKIP_HEADERS = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "upgrade"})


class _Stream:
    __slots__ = ("body", "done", "error", "index", "process", "status", "stream_id")

    def __init__(self, index: int, process: int, stream_id: int) -> None:
        self.index = index
        self.process = process
        self.stream_id = stream_id
        self.status: int | None = None
        self.body = bytearray()
        self.error: ErrorKind | None = None
        self.done = 0  # end time, 0 while open


class _H2Client(asyncio.Protocol):
    """One prior-knowledge h2c connection that collects responses per stream."""

    def __init__(self) -> None:
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.open_streams = 0
        loop = asyncio.get_running_loop()
        self.settings = loop.create_future()
        self.all_done = loop.create_future()
        self.max_streams = 100
        self.lost = False
        self.local_port: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.local_port = local_port(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self._fail_all("protocol")
            return
        for event in events:
            if isinstance(event, RemoteSettingsChanged):
                remote = self.conn.remote_settings.max_concurrent_streams
                self.max_streams = remote if remote is not None else 100
                if not self.settings.done():
                    self.settings.set_result(None)
            elif isinstance(event, ResponseReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    for name, value in event.headers:
                        if name in (":status", b":status"):
                            stream.status = int(value)
            elif isinstance(event, DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None and len(stream.body) < BODY_CAP:
                    stream.body += event.data[: BODY_CAP - len(stream.body)]
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                self._end(event.stream_id, None)
            elif isinstance(event, StreamReset):
                self._end(event.stream_id, "reset")
            elif isinstance(event, ConnectionTerminated):
                self._fail_all("closed")
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.settings.done():
            self.settings.set_exception(ConnectionError("closed before SETTINGS"))
        kind: ErrorKind = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        self._fail_all(kind)

    def _end(self, stream_id: int, error: ErrorKind | None) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.done:
            return
        stream.error = error
        stream.done = time.monotonic_ns()
        self.open_streams -= 1
        if self.open_streams == 0 and not self.all_done.done():
            self.all_done.set_result(None)

    def _fail_all(self, error: ErrorKind) -> None:
        for stream_id in list(self.streams):
            self._end(stream_id, error)
        if not self.all_done.done():
            self.all_done.set_result(None)

    def encode(self, stream: _Stream, request: HttpRequest, authority: str) -> None:
        """Encode the stream's frames into the h2 buffer (not written) and track the stream."""
        headers = [
            (":method", request.method),
            (":path", request.path),
            (":scheme", "http"),
            (":authority", authority),
        ]
        headers += [(n.lower(), v) for n, v in request.headers if n.lower() not in _SKIP_HEADERS]
        body = request.body
        self.conn.send_headers(stream.stream_id, headers, end_stream=not body)
        size = self.conn.max_outbound_frame_size
        for start in range(0, len(body), size):
            chunk = body[start : start + size]
            self.conn.send_data(stream.stream_id, chunk, end_stream=start + size >= len(body))
        self.streams[stream.stream_id] = stream
        self.open_streams += 1

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and not self.lost


async def _connect(host: str, port: int, timeout_s: float) -> _H2Client:
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(loop.create_connection(_H2Client, host, port), timeout_s)
    try:
        await asyncio.wait_for(client.settings, timeout_s)
    except BaseException:
        if client.transport is not None:
            client.transport.abort()
        raise
    return client


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
) -> BurstResult:
    """The single-packet burst; called by `run_burst(..., http2=True)`."""
    n = len(requests)
    per_conn = max(1, streams_per_connection)
    clients: list[_H2Client] = []
    try:
        first = await _open(host, port, connect_timeout_s)
        clients.append(first)
        per_conn = max(1, min(per_conn, first.max_streams))
        more = math.ceil(n / per_conn) - 1
        if more:
            clients += await asyncio.gather(
                *(_open(host, port, connect_timeout_s) for _ in range(more))
            )
        return await _fire(
            host, port, requests, clients, per_conn, connection_ids, timeout_s, settle_s
        )
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.abort()


async def _open(host: str, port: int, timeout_s: float) -> _H2Client:
    try:
        return await _connect(host, port, timeout_s)
    except (OSError, TimeoutError) as exc:
        raise SystemUnavailable(unreachable_message(host, port, exc)) from exc


async def _fire(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    clients: list[_H2Client],
    per_conn: int,
    ids: Iterator[int],
    timeout_s: float,
    settle_s: float,
) -> BurstResult:
    authority = f"{host}:{port}"
    groups: list[list[tuple[_Stream, HttpRequest]]] = [[] for _ in clients]
    for i, request in enumerate(requests):
        client_no = i // per_conn
        client = clients[client_no]
        stream = _Stream(i, next(ids), client.conn.get_next_available_stream_id())
        client.encode(stream, request, authority)
        groups[client_no].append((stream, request))
    # Taken out of h2's buffer now, so that a write from `data_received` cannot send them early.
    frames = [client.conn.data_to_send() for client in clients]
    if settle_s > 0:
        await asyncio.sleep(settle_s)

    sent: list[int | None] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for client, data in zip(clients, frames, strict=True):
            if client.alive and client.transport is not None:
                sent.append(time.monotonic_ns())
                client.transport.write(data)
            else:
                sent.append(None)
    finally:
        if gc_was_enabled:
            gc.enable()

    waits = [c.all_done for c in clients if c.open_streams]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=timeout_s)
        if pending:
            for client in clients:
                client._fail_all("timeout")
    records: list[RequestRecord] = []
    for client, sent_ns, group in zip(clients, sent, groups, strict=True):
        for stream, request in group:
            records.append(
                RequestRecord(
                    stream.index,
                    stream.process,
                    request.method,
                    request.path,
                    None,
                    sent_ns,
                    stream.done or time.monotonic_ns(),
                    stream.status,
                    stream.error,
                    bytes(stream.body),
                    request.body,
                    client.local_port,
                )
            )
    stamps = [t for t in sent if t is not None]
    spread = (stamps[-1] - stamps[0]) / 1e9 if stamps else 0.0
    return BurstResult(tuple(records), spread, len(clients), "h2")
