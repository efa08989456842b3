"""An asyncio TCP proxy with Toxiproxy-style toxics and round-robin upstreams.

heisen puts one on every link of the system under test (service → database,
service → Redis, service → payments) and one in front of each service's
replicas. `isolate` and `chaos` change its toxics at run time; the system
layer marks replicas ready or unready as their health checks say.

Upstream selection follows a Kubernetes Service over its pods: each new
connection goes to the next *ready* upstream in round-robin order; a
connection that arrives when none is ready gets a TCP RST at once, so the
client fails fast instead of hanging. Changing the upstreams or their
readiness never touches connections already open.

`enabled = False` is Toxiproxy's "down": the listening socket is closed (new
connections are refused) and open connections are dropped. Enabling again
listens on the same port.

Each proxy remembers, for its last `PEERS_KEPT` accepted connections, the
client's address and the upstream it was given (`peers()`): the load engine
learns from it which replica served each of its connections. A connection
refused for want of a ready upstream is not remembered (it reached none).

Everything here runs on one event loop and is not thread-safe: call it from
that loop (the daemon in `_proxyd` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from heisen._serialised import JsonObject
from heisen.errors import SystemUnavailable, UsageError
from heisen.system._tap import PROTOCOLS, Decoder, decoder_for
from heisen.system._tcplink import ClientSide, Link
from heisen.system._toxics import ToxicSpec, update_toxic
from heisen.system_protocol import (
    ROUND_TRIP_BUCKETS,
    DependencyOperation,
    LatencyHistogram,
    round_trip_bucket,
)

__all__ = [
    "PEERS_KEPT",
    "Address",
    "ProxyStats",
    "TcpProxy",
    "ToxicConflict",
    "ToxicNotFound",
    "Upstreams",
]

_log = logging.getLogger("heisen.proxy")

PEERS_KEPT = 100_000
"""Accepted connections whose client address and upstream a proxy remembers (oldest dropped)."""

OPERATIONS_KEPT = 200_000
"""Tapped operations a proxy keeps for its readers (oldest dropped)."""


class ToxicNotFound(UsageError):
    """No toxic of that name on the proxy."""


class ToxicConflict(UsageError):
    """A toxic of that name is already on the proxy."""


@dataclass(frozen=True, slots=True, order=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """`host:port` (`[::1]:5432` for IPv6); raises UsageError with the bad text."""
        host, sep, port = str(text).rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise UsageError(
                f"{text!r} is not an address: write it as host:port, e.g. 127.0.0.1:6379"
            )
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ProxyStats:
    connections_total: int
    connections_active: int
    bytes_upstream: int
    bytes_downstream: int
    upstream_connections: Mapping[str, int]
    toxic_chunks: int = 0
    """Chunks of data that crossed a direction with toxics."""
    toxic_delay_s: float = 0.0
    """What the toxics added to those chunks' release times, in total."""
    round_trips: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Request to first answer byte, as the proxy saw it (see `heisen.system._tcplink`)."""

    def to_json(self) -> JsonObject:
        return {
            "connections_total": self.connections_total,
            "connections_active": self.connections_active,
            "bytes_upstream": self.bytes_upstream,
            "bytes_downstream": self.bytes_downstream,
            "upstream_connections": dict(self.upstream_connections),
            "toxic_chunks": self.toxic_chunks,
            "toxic_delay_s": round(self.toxic_delay_s, 6),
            "round_trips": self.round_trips.to_json(),
        }


class Upstreams:
    """Round-robin over the ready members of an ordered list of addresses."""

    def __init__(self, addresses: Iterable[Address] = ()) -> None:
        self._ready: dict[Address, bool] = {}
        self._order: list[Address] = []
        self._next = 0
        self.set(addresses)

    def set(self, addresses: Iterable[Address]) -> None:
        """Replace the members; an address kept keeps its readiness, a new one starts ready."""
        order = list(dict.fromkeys(addresses))
        self._ready = {a: self._ready.get(a, True) for a in order}
        self._order = order
        self._next = self._next % len(order) if order else 0

    def set_ready(self, address: Address, ready: bool) -> None:
        if address not in self._ready:
            members = ", ".join(str(a) for a in self._order) or "none"
            raise UsageError(f"{address} is not an upstream of this proxy (upstreams: {members})")
        self._ready[address] = ready

    def pick(self) -> Address | None:
        count = len(self._order)
        for step in range(count):
            index = (self._next + step) % count
            address = self._order[index]
            if self._ready[address]:
                self._next = index + 1
                return address
        return None

    def to_json(self) -> list[JsonObject]:
        return [{"address": str(a), "ready": self._ready[a]} for a in self._order]

    def __iter__(self) -> Any:
        return iter(self._order)


class TcpProxy:
    """One listening address forwarding to upstreams through toxics."""

    def __init__(
        self,
        name: str,
        listen: Address,
        upstreams: Iterable[Address],
        *,
        rng: random.Random | None = None,
        enabled: bool = True,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstreams = Upstreams(upstreams)
        self.rng = rng or random.Random(name)
        self.enabled = enabled
        self.toxics: dict[str, ToxicSpec] = {}
        self._server: asyncio.Server | None = None
        self._links: set[Link] = set()
        self.stats_connections = 0
        self.stats_bytes_upstream = 0
        self.stats_bytes_downstream = 0
        self.stats_toxic_chunks = 0
        self.stats_toxic_delay_s = 0.0
        self.stats_round_trips = [0] * ROUND_TRIP_BUCKETS
        self._per_upstream: dict[str, int] = {}
        # (client address as the socket gave it, upstream) of the last PEERS_KEPT connections
        self._peers: deque[tuple[Any, Address]] = deque(maxlen=PEERS_KEPT)
        self.tap_protocol: str | None = None
        self._operations: deque[DependencyOperation] = deque(maxlen=OPERATIONS_KEPT)
        self.operations_total = 0
        self.tap_lost: dict[str, int] = {}

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        """Listen (if enabled). Listening on port 0 fixes `listen` to the port the kernel chose."""
        if self.enabled:
            await self._listen()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: ClientSide(self), self.listen.host, self.listen.port, backlog=1024
            )
        except OSError as exc:
            raise SystemUnavailable(
                f"proxy {self.name!r} cannot listen on {self.listen}: {exc.strerror or exc};"
                " choose another port or stop what holds it"
            ) from exc
        port = self._server.sockets[0].getsockname()[1]
        self.listen = Address(self.listen.host, port)

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        await self._close_listener()
        for link in list(self._links):
            link.abort()

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def set_enabled(self, enabled: bool) -> None:
        if enabled == self.enabled:
            return
        self.enabled = enabled
        if enabled:
            await self._listen()
        else:
            await self.stop()

    # --- upstreams ----------------------------------------------------------
    def set_upstreams(self, addresses: Iterable[Address]) -> None:
        self.upstreams.set(addresses)

    def set_ready(self, address: Address, ready: bool) -> None:
        self.upstreams.set_ready(address, ready)

    # --- toxics -------------------------------------------------------------
    def add_toxic(self, spec: ToxicSpec) -> ToxicSpec:
        if spec.name in self.toxics:
            raise ToxicConflict(
                f"toxic {spec.name!r} already exists on proxy {self.name!r}; update or delete it"
            )
        self.toxics[spec.name] = spec
        self._refresh_links()
        return spec

    def update_toxic(self, name: str, changes: Mapping[str, Any]) -> ToxicSpec:
        spec = update_toxic(self.toxic(name), changes)
        self.toxics[name] = spec
        self._refresh_links()
        return spec

    def remove_toxic(self, name: str) -> None:
        self.toxic(name)
        del self.toxics[name]
        self._refresh_links()

    def reset_toxics(self) -> None:
        self.toxics.clear()
        self._refresh_links()

    def toxic(self, name: str) -> ToxicSpec:
        try:
            return self.toxics[name]
        except KeyError:
            raise ToxicNotFound(f"no toxic {name!r} on proxy {self.name!r}") from None

    def _refresh_links(self) -> None:
        for link in list(self._links):
            if link.server is not None and not link.closed:
                link.refresh()

    # --- the protocol tap ----------------------------------------------------
    def set_tap(self, protocol: str | None) -> None:
        """Decode `protocol` on the connections opened from now on; None stops decoding at
        once, on open connections too (a stream cannot be picked up mid-way, so a protocol
        only ever applies to connections from their first byte)."""
        if protocol is not None and protocol not in PROTOCOLS:
            raise UsageError(f"no tap for protocol {protocol!r} (taps: {', '.join(PROTOCOLS)})")
        self.tap_protocol = protocol
        if protocol is None:
            for link in self._links:
                link.tap = None

    def new_tap(self) -> Decoder | None:
        if self.tap_protocol is None:
            return None
        return decoder_for(self.tap_protocol, self.name, self.stats_connections)

    def record_operations(self, operations: Iterable[DependencyOperation]) -> None:
        for operation in operations:
            self._operations.append(operation)
            self.operations_total += 1

    def record_tap_lost(self, reason: str) -> None:
        self.tap_lost[reason] = self.tap_lost.get(reason, 0) + 1
        _log.info("proxy %s: tap stopped on a connection: %s", self.name, reason)

    def operations(self, since: int = 0) -> tuple[int, list[DependencyOperation]]:
        """(operations decoded so far, those after the first `since` that are still kept)."""
        newer = min(max(0, self.operations_total - since), len(self._operations))
        recent = list(itertools.islice(reversed(self._operations), newer))
        return self.operations_total, recent[::-1]

    # --- bookkeeping called by links -----------------------------------------
    def link_opened(self, link: Link) -> None:
        self._links.add(link)
        self.stats_connections += 1
        key = str(link.upstream)
        self._per_upstream[key] = self._per_upstream.get(key, 0) + 1
        self._peers.append((link.client.get_extra_info("peername"), link.upstream))

    def link_closed(self, link: Link) -> None:
        self._links.discard(link)

    def record_round_trip(self, seconds: float) -> None:
        self.stats_round_trips[round_trip_bucket(seconds)] += 1

    def log_upstream_failure(self, upstream: Address) -> None:
        _log.warning("proxy %s: cannot connect to upstream %s", self.name, upstream)

    # --- views --------------------------------------------------------------
    def peers(self, since: int = 0) -> dict[str, str]:
        """`{client "host:port": upstream "host:port"}` of the connections accepted after the
        first `since` (of those still remembered); a client address used twice maps to the
        upstream of its latest connection."""
        newer = min(max(0, self.stats_connections - since), len(self._peers))
        recent = list(itertools.islice(reversed(self._peers), newer))
        result: dict[str, str] = {}
        for peer, upstream in reversed(recent):
            if isinstance(peer, tuple) and len(peer) >= 2:
                result[str(Address(str(peer[0]), int(peer[1])))] = str(upstream)
        return result

    def stats(self) -> ProxyStats:
        return ProxyStats(
            connections_total=self.stats_connections,
            connections_active=len(self._links),
            bytes_upstream=self.stats_bytes_upstream,
            bytes_downstream=self.stats_bytes_downstream,
            upstream_connections=dict(self._per_upstream),
            toxic_chunks=self.stats_toxic_chunks,
            toxic_delay_s=self.stats_toxic_delay_s,
            round_trips=LatencyHistogram.of(self.stats_round_trips),
        )

    def to_json(self) -> JsonObject:
        """Toxiproxy's proxy document, plus heisen's `upstreams` and `stats`."""
        members = list(self.upstreams)
        return {
            "name": self.name,
            "listen": str(self.listen),
            "upstream": str(members[0]) if members else "",
            "upstreams": self.upstreams.to_json(),
            "enabled": self.enabled,
            "tap": self.tap_protocol,
            "toxics": [spec.to_json() for spec in self.toxics.values()],
            "stats": self.stats().to_json(),
        }
