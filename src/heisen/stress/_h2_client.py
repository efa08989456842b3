"""One HTTP/2 client connection for the single-packet burst (`_http2`), on the `h2` state machine.

h2c with prior knowledge, or TLS with ALPN "h2". It collects each stream's
response, maps resets and GOAWAY to record kinds, and encodes a stream's
frames without writing them, so that the burst decides when they leave.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from typing import cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import FlowControlError, ProtocolError, TooManyStreamsError

from heisen.stress._http1 import local_port
from heisen.stress._records import BODY_CAP, ErrorKind
from heisen.stress._request import HttpRequest
from heisen.stress._tls import AlpnRefused, TlsClient, check_alpn

_SKIP_HEADERS = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "upgrade"})


class Stream:
    __slots__ = ("body", "done", "error", "index", "process", "status", "stream_id")

    def __init__(self, index: int, process: int, stream_id: int) -> None:
        self.index = index
        self.process = process
        self.stream_id = stream_id
        self.status: int | None = None
        self.body = bytearray()
        self.error: ErrorKind | None = None
        self.done = 0  # end time, 0 while open


class H2Client(asyncio.Protocol):
    """One HTTP/2 connection (h2c, or TLS with ALPN "h2") that collects responses per stream."""

    def __init__(self, tls: bool) -> None:
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.scheme = "https" if tls else "http"
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Stream] = {}
        self.open_streams = 0
        loop = asyncio.get_running_loop()
        self.settings = loop.create_future()
        self.all_done = loop.create_future()
        self.max_streams = 100
        self.lost = False
        self.terminated = False  # GOAWAY received
        self.local_port: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        self.local_port = local_port(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            check_alpn(transport, "h2")
        except AlpnRefused as refused:
            self.settings.set_exception(refused)
            self.transport.abort()
            return
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            # After a GOAWAY h2 rejects the frames of the streams the server still answers.
            self._fail_all("closed" if self.terminated else "protocol")
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
                refused = event.error_code == ErrorCodes.REFUSED_STREAM
                self._end(event.stream_id, "refused" if refused else "reset")
            elif isinstance(event, ConnectionTerminated):
                self._terminated(event.last_stream_id)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.settings.done():
            self.settings.set_exception(ConnectionError("closed before SETTINGS"))
        kind: ErrorKind = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        self._fail_all(kind)

    def _terminated(self, last_stream_id: int | None) -> None:
        """GOAWAY: streams above its last id were not processed; the others may still end."""
        self.terminated = True
        for stream_id in list(self.streams):
            if last_stream_id is None or stream_id > last_stream_id:
                self._end(stream_id, "refused")

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

    def encode(self, stream: Stream, request: HttpRequest, authority: str) -> ErrorKind | None:
        """Encode the stream's frames into the h2 buffer (not written) and track the stream.

        Returns why the stream cannot be sent on this connection, if it cannot.
        """
        if not self.alive:
            return "closed"
        headers = [
            (":method", request.method),
            (":path", request.path),
            (":scheme", self.scheme),
            (":authority", authority),
        ]
        headers += [(n.lower(), v) for n, v in request.headers if n.lower() not in _SKIP_HEADERS]
        body = request.body
        try:
            self.conn.send_headers(stream.stream_id, headers, end_stream=not body)
        except TooManyStreamsError:  # the server lowered its limit since the connect
            return "refused"
        try:
            size = self.conn.max_outbound_frame_size
            for start in range(0, len(body), size):
                chunk = body[start : start + size]
                self.conn.send_data(stream.stream_id, chunk, end_stream=start + size >= len(body))
        except FlowControlError:  # the server shrank its window since the connect
            self.conn.reset_stream(stream.stream_id, ErrorCodes.CANCEL)
            return "refused"
        self.streams[stream.stream_id] = stream
        self.open_streams += 1
        return None

    def room_for(self, requests: Sequence[HttpRequest], limit: int) -> int:
        """How many of `requests`, from the first, fit: streams and flow-control windows."""
        conn_window = self.conn.outbound_flow_control_window
        stream_window = self.conn.remote_settings.initial_window_size
        used = count = 0
        for request in requests[: min(limit, self.max_streams)]:
            size = len(request.body)
            if size > stream_window or used + size > conn_window:
                break
            used += size
            count += 1
        return count

    @property
    def alive(self) -> bool:
        """Open, and no GOAWAY: a stream written now could still be served."""
        transport = self.transport
        return (
            transport is not None
            and not transport.is_closing()
            and not self.lost
            and not self.terminated
        )


async def connect(host: str, port: int, timeout_s: float, tls: TlsClient | None) -> H2Client:
    loop = asyncio.get_running_loop()
    if tls is None:
        connecting = loop.create_connection(lambda: H2Client(False), host, port)
    else:
        connecting = loop.create_connection(
            lambda: H2Client(True),
            host,
            port,
            ssl=tls.context,
            server_hostname=tls.hostname_for(host),
            ssl_handshake_timeout=timeout_s,
        )
    _, client = await asyncio.wait_for(connecting, timeout_s)
    try:
        await asyncio.wait_for(client.settings, timeout_s)
    except BaseException:
        if client.transport is not None:
            client.transport.abort()
        raise
    return client
