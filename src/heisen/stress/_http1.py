"""A lean HTTP/1.1 client connection on `asyncio.Protocol`, for bursts and sustained load.

One request at a time per connection (no pipelining). The response parser
works on the receive buffer directly and handles Content-Length, chunked and
close-delimited bodies, 1xx interim responses and HEAD/204/304 (no body).
Completion is reported through a plain callback, not a future, so that a
closed-model loop can send its next request from inside `data_received`
without waking a task: that is most of the speed over aiohttp's client.

Errors map to record kinds here and only here (see `_records.ERROR_KINDS`):
ECONNRESET/EPIPE -> "reset", EOF before the response ended -> "closed",
unparseable bytes -> "protocol"; "timeout" and "refused" are decided by the
caller, which owns the clocks and the connect attempts.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import cast

from heisen.stress._records import BODY_CAP, ErrorKind
from heisen.stress._tls import TlsClient, check_alpn
from heisen.stress._tls_stream import open_tls

Done = Callable[["Http1Connection", int | None, bytes, ErrorKind | None], None]
"""on_done(connection, status, body, error), called once per request sent."""

_MAX_HEAD = 64 * 1024
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE = range(7)


class ProtocolViolation(Exception):
    """The peer's bytes are not an HTTP/1.1 response."""


class Http1Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 client connection; `id` is its stable process id."""

    __slots__ = (
        "_body",
        "_buf",
        "_chunked",
        "_closing",
        "_need",
        "_no_body",
        "_on_done",
        "_state",
        "_status",
        "closed",
        "deadline_ns",
        "id",
        "in_flight",
        "local_port",
        "lost",
        "sent_ns",
        "transport",
    )

    def __init__(self, conn_id: int) -> None:
        self.id = conn_id
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.lost: asyncio.Future[None] | None = None
        self.in_flight = False
        self.sent_ns = 0
        self.deadline_ns = 0
        self.local_port: int | None = None  # this side's port: the front proxy knows it
        self._on_done: Done | None = None
        self._buf = bytearray()
        self._body = bytearray()
        self._state = _HEAD
        self._status = 0
        self._need = 0
        self._chunked = False
        self._closing = False
        self._no_body = False

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        self.lost = asyncio.get_running_loop().create_future()
        self.local_port = local_port(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self.in_flight:
            # Bytes nobody asked for: the connection is out of step; drop it.
            self.abort()
            return
        self._buf += data
        try:
            self._parse()
        except (ProtocolViolation, ValueError, IndexError):
            self.fail("protocol")

    def eof_received(self) -> bool:
        if self.in_flight and self._state == _UNTIL_CLOSE:
            self._finish()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        if self.in_flight:
            if self._state == _UNTIL_CLOSE and exc is None:
                self._finish()
            elif isinstance(exc, ConnectionResetError | BrokenPipeError):
                self._complete(None, "reset")
            else:
                self._complete(None, "closed")

    # -- requests ---------------------------------------------------------
    def send(self, data: bytes, on_done: Done, *, head: bool = False) -> None:
        """Write one request; `on_done` is called once with its outcome."""
        self._start(on_done, head)
        self.sent_ns = time.monotonic_ns()
        assert self.transport is not None
        self.transport.write(data)

    def send_prefix(self, data: bytes, on_done: Done, *, head: bool = False) -> None:
        """Write the first part of a request (see `_burst`); the caller writes the rest."""
        self._start(on_done, head)
        assert self.transport is not None
        self.transport.write(data)

    def _start(self, on_done: Done, head: bool) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection is closed")
        self.in_flight = True
        self._on_done = on_done
        self._no_body = head
        self._state = _HEAD
        self._buf.clear()
        self._body.clear()

    def fail(self, error: ErrorKind) -> None:
        """End the request in flight with `error` and drop the connection."""
        self.abort()
        if self.in_flight:
            self._complete(None, error)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def reusable(self) -> bool:
        return not (self.closed or self._closing or self.in_flight)

    # -- response parsing ---------------------------------------------------
    def _parse(self) -> None:
        buf = self._buf
        while self.in_flight:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ProtocolViolation("response head too large")
                    return
                self._head(bytes(buf[:end]))
                del buf[: end + 4]
            elif state == _BODY:
                if not buf:
                    return
                take = min(self._need, len(buf))
                self._keep(buf, take)
                del buf[:take]
                self._need -= take
                if self._need == 0:
                    self._finish()
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise ProtocolViolation("chunk size line too long")
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0].strip(), 16)
                del buf[: end + 2]
                self._need = size
                self._state = _CHUNK_DATA if size else _TRAILER
            elif state == _CHUNK_DATA:
                if not buf:
                    return
                take = min(self._need, len(buf))
                self._keep(buf, take)
                del buf[:take]
                self._need -= take
                if self._need == 0:
                    self._state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise ProtocolViolation("chunk not followed by CRLF")
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:
                    self._finish()
            else:  # _UNTIL_CLOSE
                self._keep(buf, len(buf))
                buf.clear()
                return

    def _keep(self, buf: bytearray, take: int) -> None:
        room = BODY_CAP - len(self._body)
        if room > 0:
            self._body += buf[: min(take, room)]

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise ProtocolViolation(f"bad status line {status_line[:40]!r}")
        status = int(status_line[9:12])
        length = -1
        chunked = False
        closing = status_line[5:8] == b"1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                closing = token == b"close" or (closing and token != b"keep-alive")
        if 100 <= status < 200 and status != 101:
            return  # interim response: the final one follows
        self._status = status
        self._closing = closing
        if self._no_body or status in (204, 304) or (length == 0 and not chunked):
            self._finish()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length > 0:
            self._need = length
            self._state = _BODY
        else:
            self._closing = True
            self._state = _UNTIL_CLOSE

    def _finish(self) -> None:
        if self._closing:
            self.abort()
        self._complete(self._status, None)

    def _complete(self, status: int | None, error: ErrorKind | None) -> None:
        self.in_flight = False
        on_done, self._on_done = self._on_done, None
        body = bytes(self._body)
        self._body.clear()
        if on_done is not None:
            on_done(self, status, body, error)


async def open_connection(
    host: str, port: int, conn_id: int, connect_timeout_s: float, tls: TlsClient | None = None
) -> Http1Connection:
    """Connect one `Http1Connection`, over TLS when `tls` is given.

    Raises OSError or TimeoutError (a failed handshake is an `ssl.SSLError`, a server that
    picks another protocol than HTTP/1.1 in ALPN is `_tls.AlpnRefused`: both are OSErrors).
    """
    if tls is None:
        loop = asyncio.get_running_loop()
        connecting = loop.create_connection(lambda: Http1Connection(conn_id), host, port)
        _, protocol = await asyncio.wait_for(connecting, timeout=connect_timeout_s)
        return protocol
    connection = Http1Connection(conn_id)
    stream = await open_tls(connection, host, port, tls, connect_timeout_s)
    try:
        assert connection.transport is not None  # set once the handshake is done
        check_alpn(connection.transport, "http/1.1")  # a server on h2 would misread every byte
    except ConnectionError:
        stream.abort()
        raise
    return connection


def local_port(transport: asyncio.BaseTransport) -> int | None:
    """The port of this side of a connected socket (None when it has none)."""
    address = transport.get_extra_info("sockname")
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return address[1]
    return None


def connect_error_kind(exc: BaseException) -> ErrorKind:
    """How a failed connect attempt is recorded."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return "refused"
