"""The stub's HTTP/1.1 server: a bare asyncio.Protocol, one connection object each.

Why not aiohttp's server: it tops out near 19,500 req/s on one core here,
while a stub in front of a racing service should never be the bottleneck.
The protocol parses requests straight from the connection buffer and, for a
plain stub, writes the reply bytes prepared at load time in the same
callback: no task, no stream objects.

Delays never block the loop: a delayed reply is a `loop.call_at` timer set to
the request's arrival time plus the sampled delay, so the delay is measured
from when the request was read, not from when it was dispatched. Requests
pipelined on one connection are answered in order: while a reply is pending,
later requests wait in the buffer (and reading pauses past 1 MiB).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import cast

from heisen.errors import SystemUnavailable
from heisen.system._addresses import is_loopback_address
from heisen.system.stub._admin import PREFIX, handle
from heisen.system.stub._core import StubCore
from heisen.system.stub._faults import inflict
from heisen.system.stub._http import BadRequest, HttpRequest, parse_request
from heisen.system.stub._mappings import Mapping
from heisen.system.stub._proxy import Forwarder
from heisen.system.stub._responses import render_head

log = logging.getLogger("heisen.system.stub")
PAUSE_BUFFER_BYTES = 1 << 20
# epoll waits in whole milliseconds, rounded up, so a timer fires 0-1 ms late;
# aiming half a millisecond early centres that error on the requested time.
TIMER_LEAD_S = 0.0005
RequestHook = Callable[[HttpRequest, int, "Mapping | None"], None]


class StubServer:
    """A WireMock-compatible stub server on `host:port` (0 picks a free port)."""

    def __init__(
        self,
        root: Path | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        journal_limit: int = 10_000,
        allow_hosts: Collection[str] = (),
    ) -> None:
        self.core = StubCore(root, seed=seed, journal_limit=journal_limit, allow_hosts=allow_hosts)
        self.host = host
        self.port = port
        self.forwarder = Forwarder()
        self.on_request: RequestHook | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        """Listen and return the port."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Connection(self), self.host, self.port, reuse_address=True, backlog=2048
            )
        except OSError as exc:
            raise SystemUnavailable(
                f"the stub cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening, close every connection, cancel pending replies."""
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.shut()
            await self._server.wait_closed()
            self._server = None
        await self.forwarder.close()

    async def __aenter__(self) -> StubServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _Connection(asyncio.Protocol):
    def __init__(self, server: StubServer) -> None:
        self.server = server
        self.core = server.core
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False
        self.closed = False
        self.paused = False
        self.client = ""
        self.pending: asyncio.TimerHandle | asyncio.Task[None] | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if peer else ""
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server._connections.discard(self)
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None

    def data_received(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data
        if not self.busy:
            self._process()
        elif len(self.buffer) > PAUSE_BUFFER_BYTES and not self.paused and self.transport:
            self.transport.pause_reading()
            self.paused = True

    # request handling

    def shut(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def _process(self) -> None:
        now = self.loop.time
        while not self.busy and self.buffer and not self.closed:
            try:
                parsed = parse_request(self.buffer, now(), self.client)
            except BadRequest as error:
                body = f"{error.reason}\n".encode()
                self._write(
                    render_head(error.status, error.reason, [], None, len(body), True) + body
                )
                self.shut()
                return
            if parsed is None:
                return
            request, used = parsed
            self.buffer = self.buffer[used:]
            self._respond(request)

    def _respond(self, request: HttpRequest) -> None:
        core = self.core
        close = not request.keep_alive
        if request.path.startswith(PREFIX):
            self._admin(request, close)
            return
        mapping = core.select(request)
        hook = self.server.on_request
        if mapping is None:
            core.journal.record(request, None, 404)
            if hook:
                hook(request, 404, None)
            self._write(core.not_found(request, close=close))
            if close:
                self.shut()
            return
        spec = mapping.response
        if hook and spec.proxy is None:
            hook(request, spec.status, mapping)
        if spec.is_plain and not core.has_global_delay():
            core.journal.record(request, mapping.id, spec.status)
            self._write(spec.wire_close if close else spec.wire)
            if close:
                self.shut()
            return
        self.busy = True
        delay = core.delay_s(spec)
        if spec.proxy is not None:
            self.pending = self.loop.create_task(self._proxy(mapping, request, delay, close))
        else:
            self.pending = self.loop.call_at(
                request.received_at + delay - TIMER_LEAD_S,
                self._deliver,
                mapping,
                request,
                delay,
                close,
            )

    def _admin(self, request: HttpRequest, close: bool) -> None:
        if is_loopback_address(self.client):
            status, payload = handle(self.core, request)
        else:
            status, payload = 403, {"errors": [{"title": "the admin API answers loopback only"}]}
        body = json.dumps(payload).encode("utf-8")
        head = render_head(
            status, _reason(status), [("Content-Type", "application/json")], None, len(body), close
        )
        self._write(head + body)
        if close:
            self.shut()

    def _deliver(self, mapping: Mapping, request: HttpRequest, delay_s: float, close: bool) -> None:
        self.pending = None
        spec = mapping.response
        served_ms = (self.loop.time() - request.received_at) * 1000
        self.core.journal.record(request, mapping.id, spec.status, delay_s * 1000, served_ms)
        if self.closed or self.transport is None:
            return
        if spec.fault is not None:
            self.closed = True
            inflict(spec.fault, self.transport, self.core.rng)
            return
        if spec.dribble is None:
            self._write(spec.wire_close if close else spec.wire)
            self._finish(close)
            return
        chunks = _split(spec.body, spec.dribble.chunks)
        self._write(spec.head(mapping.id, length=len(spec.body), close=close))
        self._dribble(chunks, 0, spec.dribble.interval_s, close)

    def _dribble(self, chunks: list[bytes], index: int, interval_s: float, close: bool) -> None:
        self.pending = None
        if self.closed:
            return
        self._write(chunks[index])
        if index + 1 < len(chunks):
            self.pending = self.loop.call_later(
                interval_s, self._dribble, chunks, index + 1, interval_s, close
            )
        else:
            self._finish(close)

    async def _proxy(
        self, mapping: Mapping, request: HttpRequest, delay_s: float, close: bool
    ) -> None:
        proxy = mapping.response.proxy
        assert proxy is not None
        status, message, headers, body = await self.server.forwarder.forward(proxy, request)
        if self.server.on_request:
            self.server.on_request(request, status, mapping)
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        self.pending = None
        served_ms = (self.loop.time() - request.received_at) * 1000
        self.core.journal.record(request, mapping.id, status, delay_s * 1000, served_ms)
        if self.closed:
            return
        self._write(render_head(status, message, headers, mapping.id, len(body), close) + body)
        self._finish(close)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _finish(self, close: bool) -> None:
        if close:
            self.shut()
            return
        self.busy = False
        if self.paused and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        if self.buffer:
            self._process()


def _split(body: bytes, count: int) -> list[bytes]:
    if not body:
        return [b""]
    count = max(1, min(count, len(body)))
    size, extra = divmod(len(body), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(body[start:end])
        start = end
    return pieces


def _reason(status: int) -> str:
    from heisen.system.stub._responses import reason

    return reason(status)
