"""One proxied TCP connection: a client socket, an upstream socket, two pipes.

Design
------
Both sockets are asyncio transports driven by protocol callbacks, not by
coroutines: a chunk read from one side is written to the other inside the
same `data_received` callback. That is the fast path, taken by a direction
while no toxic applies to it; it costs one event-loop turn and one
`send()` per chunk.

A direction with toxics (or with data still queued by toxics since removed)
takes the slow path: the chunk goes through the toxics' transforms
(`_toxic_streams`), which stamp release times, into a FIFO queue; a single
`call_at` timer writes the head of the queue when its time comes. Order is
kept because release times never decrease; reads never wait on a delay.

Back-pressure: a direction stops reading its source while the destination's
transport buffer is over its high-water mark (`pause_writing`), or while its
toxic queue holds more than `_QUEUE_HIGH` bytes, and starts again when both
have drained. Each pause has a named reason so one never undoes the other.

Round trips, for request/response protocols (RESP, PostgreSQL, HTTP/1.1):
a client chunk that arrives while no request is outstanding starts one; the
first chunk written back to the client ends it, and its duration goes into
the proxy's histogram. Pipelined requests count as one round trip (the
first); answers nobody asked for (pub/sub pushes) count as none.

End of stream is passed on as a half-close (`write_eof`), so request/response
protocols that shut down their writing side still get their answer. The
link closes both sockets when both directions are finished, when a toxic
closes it (limit_data, timeout), or when the proxy is disabled or deleted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import struct
from typing import TYPE_CHECKING

from heisen.system._toxic_streams import Action, Mark, Segment, ToxicRun, make_run
from heisen.system._toxics import Stream, ToxicSpec

if TYPE_CHECKING:
    from heisen.system._tap import Decoder
    from heisen.system._tcpproxy import Address, TcpProxy

_QUEUE_HIGH = 1 << 20
_QUEUE_LOW = 1 << 18
_EARLY_S = 0.0002  # write an item this close to its time rather than sleep again
_LINGER_ZERO = struct.pack("ii", 1, 0)


def reset_transport(transport: asyncio.BaseTransport) -> None:
    """Close with SO_LINGER 0, so the kernel sends a TCP RST instead of a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()


class Pipe:
    """One direction of a link: reads from `src`, writes to `dst`."""

    def __init__(self, link: Link, stream: Stream) -> None:
        self.link = link
        self.stream = stream
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.fast = True
        self.runs: list[ToxicRun] = []
        self.queue: collections.deque[Segment] = collections.deque()
        self.queued_bytes = 0
        self.last_release = 0.0
        self.pump_handle: asyncio.TimerHandle | None = None
        self.timers: dict[str, asyncio.Handle] = {}
        self.pauses: set[str] = set()
        self.dst_paused = False
        self.src_done = False
        self.done = False

    # --- reading side -------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.done:
            return
        link = self.link
        if self.stream is Stream.UPSTREAM:
            link.proxy.stats_bytes_upstream += len(data)
            if link.asked_at is None:
                link.asked_at = link.loop.time()
        else:
            link.proxy.stats_bytes_downstream += len(data)
        if self.fast:
            self.dst.write(data)  # type: ignore[union-attr]
            if link.asked_at is not None and self.stream is Stream.DOWNSTREAM:
                link.answered()
        else:
            self._push([(self.link.loop.time(), data)])
        if link.tap is not None:
            link.tapped(self.stream, data)

    def feed_eof(self) -> None:
        if self.src_done:
            return
        self.src_done = True
        if self.fast:
            self._deliver_mark(Mark.EOF)
        else:
            self._push([(self.link.loop.time(), Mark.EOF)])

    def _push(self, segments: list[Segment]) -> None:
        arrived = segments[0][0]
        for run in self.runs:
            segments = run.apply(segments)
        released = max((t for t, item in segments if isinstance(item, bytes)), default=None)
        if released is not None and self.runs:  # what the toxics added to this chunk
            self.link.proxy.stats_toxic_chunks += 1
            self.link.proxy.stats_toxic_delay_s += max(0.0, released - arrived)
        last = self.last_release
        for t, item in segments:
            last = t if t > last else last
            self.queue.append((last, item))
            if isinstance(item, bytes):
                self.queued_bytes += len(item)
        self.last_release = last
        if self.queued_bytes > _QUEUE_HIGH:
            self.pause("queue")
        self._schedule()

    # --- writing side -------------------------------------------------------
    def _schedule(self) -> None:
        if self.pump_handle is not None or self.dst_paused or not self.queue:
            return
        self.pump_handle = self.link.loop.call_at(self.queue[0][0], self._pump)

    def _pump(self) -> None:
        self.pump_handle = None
        loop = self.link.loop
        now = loop.time() + _EARLY_S
        queue = self.queue
        while queue and queue[0][0] <= now and not self.dst_paused and not self.done:
            _, item = queue.popleft()
            if isinstance(item, bytes):
                self.queued_bytes -= len(item)
                if item:
                    self.dst.write(item)  # type: ignore[union-attr]
                    if self.link.asked_at is not None and self.stream is Stream.DOWNSTREAM:
                        self.link.answered()
            elif item is Mark.CLOSE:
                self.link.close()
                return
            else:
                self._deliver_mark(item)
        if self.done:
            queue.clear()
            self.queued_bytes = 0
        if self.queued_bytes <= _QUEUE_LOW:
            self.resume("queue")
        if not queue and not self.runs:
            self.fast = True
        self._schedule()

    def _deliver_mark(self, mark: Mark) -> None:
        if self.done:
            return
        if mark is Mark.EOF and self.dst is not None and not self.dst.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                if self.dst.can_write_eof():
                    self.dst.write_eof()
        self.done = True
        self.link.direction_done()

    def on_dst_pause(self) -> None:
        self.dst_paused = True
        self.pause("dst")

    def on_dst_resume(self) -> None:
        self.dst_paused = False
        self.resume("dst")
        self._schedule()

    def pause(self, reason: str) -> None:
        if not self.pauses and self.src is not None and not self.src.is_closing():
            self.src.pause_reading()
        self.pauses.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self.pauses:
            return
        self.pauses.discard(reason)
        if not self.pauses and self.src is not None and not self.src.is_closing():
            self.src.resume_reading()

    # --- toxics -------------------------------------------------------------
    def refresh(self, specs: list[ToxicSpec]) -> None:
        """Make the direction's toxics `specs` (already filtered by toxicity for this link)."""
        current = {run.spec.name: run for run in self.runs}
        runs: list[ToxicRun] = []
        for spec in specs:
            run = current.get(spec.name)
            if run is None or run.spec != spec:
                run = make_run(spec, self.link.proxy.rng)
            runs.append(run)
        self.runs = runs
        self._arm_timers()
        if runs:
            self.fast = False
        elif not self.queue:
            self.fast = True

    def _arm_timers(self) -> None:
        wanted = {run.spec.name: run for run in self.runs if run.timer is not None}
        for name in list(self.timers):
            if name not in wanted:
                self.timers.pop(name).cancel()
        for name, run in wanted.items():
            if name in self.timers:
                continue
            delay, action = run.timer  # type: ignore[misc]
            callback = self.link.reset if action is Action.RESET else self.link.close
            self.timers[name] = self.link.loop.call_later(delay, callback)

    def stop(self) -> None:
        if self.pump_handle is not None:
            self.pump_handle.cancel()
            self.pump_handle = None
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self.queue.clear()
        self.queued_bytes = 0
        self.done = True


class _Side(asyncio.Protocol):
    """Protocol of one socket of a link; routes callbacks to the link's pipes."""

    def __init__(self, link: Link, *, client: bool) -> None:
        self.link = link
        self.client = client
        # the pipe that reads from this side, and the one that writes to it
        self.reads = link.up if client else link.down
        self.writes = link.down if client else link.up

    def data_received(self, data: bytes) -> None:
        self.reads.feed(data)

    def eof_received(self) -> bool:
        self.reads.feed_eof()
        return True  # keep our writing half open: the other direction may still be sending

    def pause_writing(self) -> None:
        self.writes.on_dst_pause()

    def resume_writing(self) -> None:
        self.writes.on_dst_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.side_lost(client=self.client)


class ClientSide(_Side):
    """The accepting socket's protocol: picks an upstream and opens the link."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.opened = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        upstream = self.proxy.upstreams.pick()
        if upstream is None or not self.proxy.enabled:
            reset_transport(transport)
            return
        transport.pause_reading()
        link = Link(self.proxy, transport, upstream)
        super().__init__(link, client=True)
        self.opened = True
        link.connect_task = link.loop.create_task(link.connect())

    def data_received(self, data: bytes) -> None:
        if self.opened:
            self.reads.feed(data)

    def eof_received(self) -> bool:
        if self.opened:
            self.reads.feed_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.opened:
            self.link.side_lost(client=True)


class Link:
    """A client connection and its upstream connection, with both directions."""

    def __init__(self, proxy: TcpProxy, client: asyncio.Transport, upstream: Address) -> None:
        self.proxy = proxy
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.server: asyncio.Transport | None = None
        self.upstream = upstream
        self.up = Pipe(self, Stream.UPSTREAM)
        self.down = Pipe(self, Stream.DOWNSTREAM)
        self.up.src = client
        self.down.dst = client
        self.rolls: dict[str, tuple[float, bool]] = {}
        self.asked_at: float | None = None  # when the outstanding request came in, if one is
        self.connect_task: asyncio.Task[None] | None = None
        self.client_lost = False
        self.server_lost = False
        self.closed = False
        proxy.link_opened(self)
        self.tap: Decoder | None = proxy.new_tap()

    async def connect(self) -> None:
        try:
            transport, _ = await self.loop.create_connection(
                lambda: _Side(self, client=False), self.upstream.host, self.upstream.port
            )
        except OSError:
            self.proxy.log_upstream_failure(self.upstream)
            self.reset()
            return
        assert isinstance(transport, asyncio.Transport)
        if self.closed:
            transport.abort()
            return
        self.server = transport
        self.up.dst = transport
        self.down.src = transport
        self.refresh()
        self.client.resume_reading()

    def refresh(self) -> None:
        """Apply the proxy's current toxics; each toxic is rolled once per link."""
        for pipe in (self.up, self.down):
            specs = [s for s in self.proxy.toxics.values() if s.stream is pipe.stream]
            pipe.refresh([s for s in specs if self._rolled(s)])

    def _rolled(self, spec: ToxicSpec) -> bool:
        roll = self.rolls.get(spec.name)
        if roll is None or roll[0] != spec.toxicity:
            roll = (spec.toxicity, self.proxy.rng.random() < spec.toxicity)
            self.rolls[spec.name] = roll
        return roll[1]

    def tapped(self, stream: Stream, data: bytes) -> None:
        """Hand a copy of forwarded bytes to the tap; a tap that fails stops, the bytes flow on."""
        tap = self.tap
        assert tap is not None
        try:
            if stream is Stream.UPSTREAM:
                tap.from_client(data, self.loop.time())
            else:
                tap.from_server(data, self.loop.time())
            operations = tap.take()
        except Exception as exc:
            self._untap(f"the tap failed: {type(exc).__name__}: {exc}")
            return
        if operations:
            self.proxy.record_operations(operations)
        if tap.lost is not None:
            self._untap(tap.lost)

    def _untap(self, reason: str) -> None:
        self.tap = None
        self.proxy.record_tap_lost(reason)

    def _close_tap(self) -> None:
        tap, self.tap = self.tap, None
        if tap is None:
            return
        try:
            tap.close(self.loop.time())
            self.proxy.record_operations(tap.take())
        except Exception as exc:
            self.proxy.record_tap_lost(f"the tap failed: {type(exc).__name__}: {exc}")

    def answered(self) -> None:
        """The first bytes of an answer went to the client: one round trip is over."""
        asked, self.asked_at = self.asked_at, None
        if asked is not None:
            self.proxy.record_round_trip(self.loop.time() - asked)

    def direction_done(self) -> None:
        if self.up.done and self.down.done:
            self.close()

    def side_lost(self, *, client: bool) -> None:
        if client:
            self.client_lost = True
            self.up.feed_eof()
            self.down.stop()
        else:
            self.server_lost = True
            self.down.feed_eof()
            self.up.stop()
        if self.client_lost and (self.server_lost or self.server is None):
            self._finish()
        elif self.up.done and self.down.done:
            self.close()

    def close(self) -> None:
        """Close both sockets after what their buffers hold has been sent."""
        self._end(reset=False)

    def reset(self) -> None:
        """Close both sockets with a TCP RST."""
        self._end(reset=True)

    def abort(self) -> None:
        self._end(reset=False, drop=True)

    def _end(self, *, reset: bool, drop: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.up.stop()
        self.down.stop()
        for transport in (self.client, self.server):
            if transport is None:
                continue
            if reset:
                reset_transport(transport)
            elif drop:
                transport.abort()
            else:
                transport.close()
        task = self.connect_task
        if self.server is None and task is not None and task is not asyncio.current_task():
            task.cancel()
        if self.server is None:
            self._finish()

    def _finish(self) -> None:
        self.closed = True
        self._close_tap()
        self.up.stop()
        self.down.stop()
        self.proxy.link_closed(self)
