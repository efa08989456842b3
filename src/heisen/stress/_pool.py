"""A pool of keep-alive HTTP/1.1 connections that turns submitted requests into records.

The pool is callback-driven: `submit()` writes on an idle connection at once,
opens a new one while below `max_connections`, or else queues the request
(FIFO). When a response completes, the connection takes the next queued
request before the record is handed to `on_record`, so a closed-model user
that submits from `on_record` reuses its own connection without a task switch.

A connection that ends in error, or that the server asked to close, is
dropped and never reused; its id (the history process) retires with it. A
failed connect attempt consumes one queued request, recorded as "refused" or
"timeout" under the id the attempt drew (so no two records share a process
id), so an unreachable target cannot make the pool spin.

Every request submitted gets exactly one record (`on_record` is called once
for it): when it completes, when it times out, when the pool is drained, and
when the pool is closed with it still queued or in flight (then as "timeout",
with `sent_ns=None` if it was never written). `submitted` counts the
requests, independently of the records.

Timeouts are enforced by one sweeper task (a tick every `timeout_s / 4`, at
most 100 ms) instead of one timer per request.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator

from heisen.errors import SystemUnavailable
from heisen.stress._http1 import Http1Connection, connect_error_kind, open_connection
from heisen.stress._records import ErrorKind, RequestRecord
from heisen.stress._request import HttpRequest
from heisen.stress._tls import TlsClient, connect_failure_message

OnRecord = Callable[[RequestRecord], None]


class _Pending:
    __slots__ = ("data", "index", "intended_ns", "request")

    def __init__(self, index: int, request: HttpRequest, data: bytes, intended_ns: int | None):
        self.index = index
        self.request = request
        self.data = data
        self.intended_ns = intended_ns


class Http1Pool:
    """Keep-alive connections to one host:port; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_record: OnRecord,
        max_connections: int = 50,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        connection_ids: Iterator[int] | None = None,
        tls: TlsClient | None = None,
    ) -> None:
        self.host = host
        self.tls = tls
        self.port = port
        self.authority = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        self.on_record = on_record
        self.max_connections = max_connections
        self.timeout_ns = int(timeout_s * 1e9)
        self.connect_timeout_s = connect_timeout_s
        self._ids = connection_ids if connection_ids is not None else itertools.count(1)
        self._idle: list[Http1Connection] = []
        self._busy: dict[Http1Connection, _Pending] = {}
        self._all: set[Http1Connection] = set()
        self._queue: deque[_Pending] = deque()
        self._connecting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._quiet: asyncio.Event | None = None
        self._closed = False
        self.submitted = 0

    # -- lifecycle --------------------------------------------------------
    async def start(self, connections: int = 1) -> None:
        """Open `connections` now; raise SystemUnavailable if none can be opened."""
        results = await asyncio.gather(
            *(self._connect() for _ in range(max(1, connections))), return_exceptions=True
        )
        opened = [r for r in results if isinstance(r, Http1Connection)]
        if not opened:
            first = next(r for r in results if isinstance(r, BaseException))
            raise SystemUnavailable(connect_failure_message(self.host, self.port, first)) from first
        for conn in opened:
            self._idle.append(conn)
        tick = min(0.1, self.timeout_ns / 4e9)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(tick))

    async def close(self) -> None:
        """Record what is still queued or in flight as "timeout", then abort every connection and task."""
        if not self._closed:
            self._closed = True
            self.expire_all()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._all):
            conn.abort()
        waits = [c.lost for c in self._all if c.lost is not None]
        waits += [t for t in (self._sweeper, *self._tasks) if t is not None]
        if waits:
            await asyncio.wait(waits, timeout=1.0)
        self._all.clear()
        self._idle.clear()
        self._busy.clear()

    async def drain(self, deadline_s: float) -> None:
        """Wait until nothing is queued or in flight, at most `deadline_s`; then time out the rest."""
        if self.outstanding:
            self._quiet = asyncio.Event()
            try:
                await asyncio.wait_for(self._quiet.wait(), timeout=deadline_s)
            except TimeoutError:
                pass
            finally:
                self._quiet = None
        self.expire_all()

    def expire_all(self) -> None:
        """Record every request queued or in flight as a timeout."""
        while self._queue:
            self._fail_pending(self._queue.popleft(), "timeout", sent_ns=None, conn_id=0)
        for conn in list(self._busy):
            conn.fail("timeout")

    @property
    def outstanding(self) -> int:
        return len(self._queue) + len(self._busy)

    @property
    def connections_opened(self) -> int:
        return len(self._all)

    # -- requests ---------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, index: int, request: HttpRequest, intended_ns: int | None = None) -> None:
        """Send `request` now or when a connection is free; its record goes to `on_record`."""
        self.submitted += 1
        pending = _Pending(index, request, request.encode_http1(self.authority), intended_ns)
        if self._closed:  # never written: recorded at once, like a request expired in the queue
            self._fail_pending(pending, "timeout", sent_ns=None, conn_id=0)
            return
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                self._send(conn, pending)
                return
        self._queue.append(pending)
        if len(self._all) + self._connecting < self.max_connections or not self._all:
            self._spawn_connect()

    def _send(self, conn: Http1Connection, pending: _Pending) -> None:
        self._busy[conn] = pending
        conn.deadline_ns = time.monotonic_ns() + self.timeout_ns
        try:
            conn.send(pending.data, self._done, head=pending.request.method == "HEAD")
        except ConnectionError:
            self._busy.pop(conn, None)
            self._forget(conn)
            self._queue.appendleft(pending)
            self._spawn_connect()

    def _done(
        self, conn: Http1Connection, status: int | None, body: bytes, error: ErrorKind | None
    ) -> None:
        end_ns = time.monotonic_ns()
        pending = self._busy.pop(conn)
        sent_ns = conn.sent_ns  # read before the connection sends the next queued request
        if conn.reusable and not self._closed:
            if self._queue:
                self._send(conn, self._queue.popleft())
            else:
                self._idle.append(conn)
        else:
            self._forget(conn)
            if self._queue and not self._closed:
                self._spawn_connect()
        request = pending.request
        self.on_record(
            RequestRecord(
                pending.index,
                conn.id,
                request.method,
                request.path,
                pending.intended_ns,
                sent_ns,
                end_ns,
                status,
                error,
                body,
                request.body,
                conn.local_port,
            )
        )
        if self._quiet is not None and not self.outstanding:
            self._quiet.set()

    def _forget(self, conn: Http1Connection) -> None:
        self._all.discard(conn)
        conn.abort()

    def _fail_pending(
        self, pending: _Pending, error: ErrorKind, *, sent_ns: int | None, conn_id: int
    ) -> None:
        request = pending.request
        self.on_record(
            RequestRecord(
                pending.index,
                conn_id,
                request.method,
                request.path,
                pending.intended_ns,
                sent_ns,
                time.monotonic_ns(),
                None,
                error,
                b"",
                request.body,
            )
        )

    # -- connecting -------------------------------------------------------
    async def _connect(self, conn_id: int | None = None) -> Http1Connection:
        conn_id = next(self._ids) if conn_id is None else conn_id
        conn = await open_connection(
            self.host, self.port, conn_id, self.connect_timeout_s, tls=self.tls
        )
        self._all.add(conn)
        return conn

    def _spawn_connect(self) -> None:
        self._connecting += 1
        task = asyncio.get_running_loop().create_task(self._connect_for_queue())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_for_queue(self) -> None:
        conn_id = next(self._ids)
        try:
            conn = await self._connect(conn_id)
        except (OSError, TimeoutError) as exc:
            self._connecting -= 1
            if self._queue:
                now = time.monotonic_ns()
                self._fail_pending(
                    self._queue.popleft(), connect_error_kind(exc), sent_ns=now, conn_id=conn_id
                )
                if self._queue and not self._closed:
                    self._spawn_connect()
            if self._quiet is not None and not self.outstanding:
                self._quiet.set()
            return
        self._connecting -= 1
        if self._closed:
            conn.abort()
        elif self._queue:
            self._send(conn, self._queue.popleft())
        else:
            self._idle.append(conn)

    async def _sweep(self, tick_s: float) -> None:
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic_ns()
            for conn in [c for c in self._busy if c.deadline_ns <= now]:
                conn.fail("timeout")


def unreachable_message(host: str, port: int, exc: BaseException) -> str:
    where = f"{host}:{port}"
    if isinstance(exc, TimeoutError):
        return f"{where} did not accept a connection in time (connect timeout); is the service up?"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing is listening on {where}: start the service or check the port"
    return f"cannot connect to {where}: {exc}"
