"""HTTP/2 single-packet burst (prior-knowledge h2c), built on the `h2` state machine.

The same four phases as the HTTP/1.1 barrier in `_burst`, with frames instead
of bytes: each request's HEADERS (and all of its body but the last byte) are
sent without END_STREAM, so the server holds every stream open; at release,
each connection writes the final DATA frame of all its streams (1 byte, or
empty for a bodiless request, with END_STREAM) in a single `write`, which the
kernel sends as one TCP segment when it fits the MSS (~20-30 requests per
packet over the Internet; on loopback the MTU is 64 KiB). Several connections
are used only when the burst exceeds `streams_per_connection` or the server's
SETTINGS_MAX_CONCURRENT_STREAMS.

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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
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

    def prime(self, stream: _Stream, request: HttpRequest, authority: str) -> None:
        headers = [
            (":method", request.method),
            (":path", request.path),
            (":scheme", "http"),
            (":authority", authority),
        ]
        headers += [(n.lower(), v) for n, v in request.headers if n.lower() not in _SKIP_HEADERS]
        self.conn.send_headers(stream.stream_id, headers, end_stream=False)
        if len(request.body) > 1:
            self.conn.send_data(stream.stream_id, request.body[:-1], end_stream=False)
        self.streams[stream.stream_id] = stream
        self.open_streams += 1

    def close_frames(self, requests: Sequence[tuple[_Stream, HttpRequest]]) -> bytes:
        for stream, request in requests:
            self.conn.send_data(stream.stream_id, request.body[-1:], end_stream=True)
        return self.conn.data_to_send()


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
        client.prime(stream, request, authority)
        groups[client_no].append((stream, request))
    frames = []
    for client, group in zip(clients, groups, strict=True):
        assert client.transport is not None
        client.transport.write(client.conn.data_to_send())
        frames.append(client.close_frames(group))  # encoded now, written at release
    await asyncio.sleep(settle_s)

    sent: list[int] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for client, data in zip(clients, frames, strict=True):
            assert client.transport is not None
            sent.append(time.monotonic_ns())
            client.transport.write(data)
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
    for sent_ns, group in zip(sent, groups, strict=True):
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
                )
            )
    return BurstResult(tuple(records), (sent[-1] - sent[0]) / 1e9, len(clients), "h2")
