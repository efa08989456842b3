"""The TCP proxy on real loopback sockets: pass-through, round-robin, every toxic.

The proxy runs on an event loop in a background thread; clients and upstream
servers are plain blocking sockets in the test's threads, so what a client
sees (bytes, delays, EOF, RST) is what a real client of the proxy would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from heisen.errors import UsageError
from heisen.system._tcpproxy import Address, TcpProxy, ToxicConflict, ToxicNotFound
from heisen.system._toxics import LatencyAttributes, make_delay_sampler, parse_toxic
from support import LoopThread, wait_until

T = TypeVar("T")
pytestmark = pytest.mark.timeout(60)


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every connection; counts the connections and bytes it saw."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.received = 0
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class _EchoHandler(socketserver.BaseRequestHandler):
    server: EchoServer

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        sock: socket.socket = self.request
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                with self.server.lock:
                    self.server.received += len(data)
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture
def echo() -> Iterator[Callable[[], EchoServer]]:
    servers: list[EchoServer] = []

    def make() -> EchoServer:
        servers.append(EchoServer())
        return servers[-1]

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def make_proxy(loop: LoopThread) -> Iterator[Callable[..., TcpProxy]]:
    proxies: list[TcpProxy] = []

    def make(*upstreams: str, seed: int = 7) -> TcpProxy:
        proxy = TcpProxy(
            "test",
            Address("127.0.0.1", 0),
            [Address.parse(u) for u in upstreams],
            rng=random.Random(seed),
        )
        loop.run(proxy.start())
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            loop.run(proxy.stop())


def connect(proxy: TcpProxy, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.listen.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        chunk = sock.recv(min(65536, size - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def ping(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for `payload` to go through the proxy, be echoed, and come back."""
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload
    return time.perf_counter() - start


def add(loop: LoopThread, proxy: TcpProxy, toxic: dict[str, Any]) -> None:
    loop.call(proxy.add_toxic, parse_toxic(toxic))


# --- pass-through --------------------------------------------------------------


def test_pass_through_is_byte_exact_both_ways(loop, echo, make_proxy) -> None:
    server = echo()
    proxy = make_proxy(server.address)
    payload = os.urandom(8 << 20)
    with connect(proxy) as sock:
        sender = threading.Thread(
            target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR))
        )
        sender.start()
        received = recv_exact(sock, len(payload) + 1)
        sender.join(10)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    assert server.received == len(payload)
    stats = loop.call(proxy.stats)
    assert (stats.bytes_upstream, stats.bytes_downstream) == (len(payload), len(payload))
    assert stats.connections_total == 1


def test_connection_count_returns_to_zero_after_close(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    for _ in range(5):
        with connect(proxy) as sock:
            ping(sock)
    wait_until(
        lambda: loop.call(proxy.stats).connections_active == 0,
        timeout=3,
        what="no connection left active",
    )
    assert loop.call(proxy.stats).connections_total == 5


# --- upstream selection --------------------------------------------------------


def test_round_robin_across_three_upstreams_skips_unready(loop, echo, make_proxy) -> None:
    servers = [echo(), echo(), echo()]
    proxy = make_proxy(*(s.address for s in servers))
    for _ in range(9):
        with connect(proxy) as sock:
            ping(sock)
    assert [s.connections for s in servers] == [3, 3, 3]

    loop.call(proxy.set_ready, Address.parse(servers[1].address), False)
    for _ in range(6):
        with connect(proxy) as sock:
            ping(sock)
    assert [s.connections for s in servers] == [6, 3, 6]

    loop.call(proxy.set_ready, Address.parse(servers[1].address), True)
    loop.call(proxy.set_upstreams, [Address.parse(servers[1].address)])
    for _ in range(2):
        with connect(proxy) as sock:
            ping(sock)
    assert [s.connections for s in servers] == [6, 5, 6]


def test_readiness_of_unknown_upstream_is_a_usage_error(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    with pytest.raises(UsageError, match="not an upstream"):
        loop.call(proxy.set_ready, Address.parse("127.0.0.1:1"), False)


def test_no_ready_upstream_resets_the_client_at_once(loop, echo, make_proxy) -> None:
    server = echo()
    proxy = make_proxy(server.address)
    loop.call(proxy.set_ready, Address.parse(server.address), False)
    start = time.monotonic()
    with pytest.raises((ConnectionResetError, BrokenPipeError)), connect(proxy) as sock:
        sock.sendall(b"x")
        if sock.recv(10) == b"":
            raise ConnectionResetError("EOF")
    assert time.monotonic() - start < 1.0
    assert server.connections == 0


def test_unreachable_upstream_resets_the_client(make_proxy) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{placeholder.getsockname()[1]}"  # bound, never listening
        proxy = make_proxy(dead)
        start = time.monotonic()
        with pytest.raises(ConnectionResetError), connect(proxy) as sock:
            sock.recv(10)
    assert time.monotonic() - start < 1.0


# --- toxics, each measured on a real connection -----------------------------------


def test_fixed_latency_delays_each_round_trip(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "latency", "attributes": {"latency": 40}})
    with connect(proxy) as sock:
        times = [ping(sock) for _ in range(8)]
    assert 0.038 <= statistics.median(times) < 0.040 + 0.030


def test_lognormal_latency_median_matches(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    attributes = {"distribution": "lognormal", "median_ms": 20, "sigma": 0.4}
    add(loop, proxy, {"type": "latency", "stream": "upstream", "attributes": attributes})
    with connect(proxy) as sock:
        times = [ping(sock) for _ in range(41)]
    assert 0.014 <= statistics.median(times) <= 0.020 * 1.35 + 0.006
    assert max(times) > min(times) + 0.005  # it is a distribution, not a constant


def test_latency_keeps_byte_order_under_jitter(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(
        loop,
        proxy,
        {"type": "latency", "stream": "upstream", "attributes": {"latency": 10, "jitter": 10}},
    )
    add(
        loop,
        proxy,
        {
            "type": "latency",
            "attributes": {"distribution": "uniform", "lower_ms": 0, "upper_ms": 15},
        },
    )
    messages = [f"<{i:04d}>".encode() for i in range(150)]
    expected = b"".join(messages)
    with connect(proxy) as sock:
        for message in messages:
            sock.sendall(message)
        assert recv_exact(sock, len(expected)) == expected


def test_bandwidth_limits_the_rate(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "bandwidth", "attributes": {"rate": 400}})
    payload = os.urandom(200_000)
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        assert recv_exact(sock, len(payload)) == payload
        elapsed = time.perf_counter() - start
    rate_kb_s = len(payload) / elapsed / 1000
    assert 300 <= rate_kb_s <= 430


def test_timeout_closes_after_the_timeout_and_passes_nothing(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "timeout", "attributes": {"timeout": 200}})
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(b"hello")
        assert sock.recv(10) == b""
        assert 0.18 <= time.monotonic() - start < 1.0


def test_timeout_zero_holds_the_connection_open(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "timeout", "attributes": {"timeout": 0}})
    with connect(proxy, timeout=0.3) as sock:
        sock.sendall(b"hello")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        loop.call(proxy.remove_toxic, "timeout_downstream")
        sock.settimeout(5)
        assert ping(sock) < 1.0  # the data swallowed while held is gone; new data flows


def test_reset_peer_gives_the_client_a_connection_reset(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "reset_peer", "attributes": {"timeout": 150}})
    with connect(proxy) as sock:
        start = time.monotonic()
        ping(sock)  # data flows until the timeout
        with pytest.raises(ConnectionResetError):
            for _ in range(100):
                sock.recv(10)
        assert 0.13 <= time.monotonic() - start < 1.5


def test_slicer_cuts_data_into_small_delayed_pieces(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    attributes = {"average_size": 10, "size_variation": 5, "delay": 3000}
    add(loop, proxy, {"type": "slicer", "attributes": attributes})
    payload = os.urandom(600)
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        pieces: list[bytes] = []
        while sum(map(len, pieces)) < len(payload):
            pieces.append(sock.recv(65536))
        elapsed = time.perf_counter() - start
    assert b"".join(pieces) == payload
    assert len(pieces) >= 15  # 60 slices on average; a busy reader may merge a few
    assert elapsed >= 0.1  # ~59 gaps of 3 ms


def test_limit_data_closes_after_the_limit(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "limit_data", "attributes": {"bytes": 1000}})
    payload = os.urandom(3000)
    with connect(proxy) as sock:
        sock.sendall(payload)
        received = recv_exact(sock, len(payload))
    assert received == payload[:1000]


def test_slow_close_delays_the_end_of_stream(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "slow_close", "attributes": {"delay": 300}})
    with connect(proxy) as sock:
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)
        start = time.monotonic()
        assert recv_exact(sock, 3) == b"bye"
        data_at = time.monotonic() - start
        assert sock.recv(10) == b""
        eof_at = time.monotonic() - start
    assert data_at < 0.2
    assert 0.28 <= eof_at < 1.5


def test_down_refuses_new_and_drops_open_connections(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    port = proxy.listen.port
    with connect(proxy) as sock:
        ping(sock)
        loop.run(proxy.set_enabled(False))
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    loop.run(proxy.set_enabled(True))
    assert proxy.listen.port == port
    with connect(proxy) as sock:
        ping(sock)


@pytest.mark.parametrize(("toxicity", "slow"), [(0.0, False), (1.0, True)])
def test_toxicity_zero_and_one(loop, echo, make_proxy, toxicity, slow) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "latency", "toxicity": toxicity, "attributes": {"latency": 80}})
    with connect(proxy) as sock:
        assert (ping(sock) >= 0.075) is slow


def test_toxicity_is_rolled_per_connection_with_the_seed(loop, echo, make_proxy) -> None:
    def slow_connections(seed: int) -> list[bool]:
        proxy = make_proxy(server.address, seed=seed)
        add(loop, proxy, {"type": "latency", "toxicity": 0.5, "attributes": {"latency": 30}})
        result = []
        for _ in range(12):
            with connect(proxy) as sock:
                result.append(ping(sock) >= 0.028)
        return result

    server = echo()
    first = slow_connections(seed=3)
    assert 0 < sum(first) < len(first)
    assert slow_connections(seed=3) == first


def test_toxics_change_at_run_time_without_dropping_the_connection(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    with connect(proxy) as sock:
        assert ping(sock) < 0.03
        add(loop, proxy, {"name": "slow", "type": "latency", "attributes": {"latency": 60}})
        assert ping(sock) >= 0.058
        loop.call(proxy.update_toxic, "slow", {"attributes": {"latency": 15}})
        assert 0.014 <= ping(sock) < 0.05
        loop.call(proxy.remove_toxic, "slow")
        assert ping(sock) < 0.03
    assert loop.call(proxy.stats).connections_total == 1


def test_toxic_names_are_unique_and_must_exist(loop, echo, make_proxy) -> None:
    proxy = make_proxy(echo().address)
    add(loop, proxy, {"type": "latency", "attributes": {"latency": 1}})
    with pytest.raises(ToxicConflict):
        add(loop, proxy, {"type": "latency", "attributes": {"latency": 2}})
    with pytest.raises(ToxicNotFound):
        loop.call(proxy.remove_toxic, "nope")


# --- toxic validation and samplers (no sockets) ------------------------------------


def test_invalid_toxics_are_reported_with_every_problem() -> None:
    with pytest.raises(UsageError, match="lognormal latency needs sigma"):
        parse_toxic(
            {"type": "latency", "attributes": {"distribution": "lognormal", "median_ms": 5}}
        )
    with pytest.raises(UsageError, match=r"toxicity.*less than or equal to 1"):
        parse_toxic({"type": "latency", "toxicity": 2})
    with pytest.raises(UsageError, match="latncy"):
        parse_toxic({"type": "latency", "attributes": {"latncy": 5}})
    with pytest.raises(UsageError, match="type"):
        parse_toxic({"type": "gremlins"})


def test_delay_samplers_follow_their_distribution() -> None:
    rng = random.Random(1)

    def draw(**attributes: Any) -> list[float]:
        sample = make_delay_sampler(LatencyAttributes(**attributes), rng)
        return [sample() * 1000 for _ in range(4000)]

    lognormal = draw(distribution="lognormal", median_ms=50, sigma=0.5)
    assert statistics.median(lognormal) == pytest.approx(50, rel=0.06)
    capped = draw(distribution="lognormal", median_ms=50, sigma=1.0, max_ms=80)
    assert max(capped) <= 80
    uniform = draw(distribution="uniform", lower_ms=10, upper_ms=20)
    assert 10 <= min(uniform) and max(uniform) <= 20
    normal = draw(distribution="normal", mean_ms=30, stddev_ms=5)
    assert statistics.mean(normal) == pytest.approx(30, rel=0.03)
    assert statistics.stdev(normal) == pytest.approx(5, rel=0.08)
    jitter = draw(latency=100, jitter=10)
    assert 90 <= min(jitter) and max(jitter) <= 110
    assert set(draw(distribution="fixed", median_ms=7)) == {7}


def test_many_concurrent_connections_under_jitter_stay_byte_exact(loop, echo, make_proxy) -> None:
    servers = [echo(), echo(), echo()]
    proxy = make_proxy(*(s.address for s in servers))
    jitter = {"latency": 5, "jitter": 5}
    add(loop, proxy, {"name": "up", "type": "latency", "stream": "upstream", "attributes": jitter})
    add(loop, proxy, {"name": "down", "type": "latency", "attributes": jitter})

    async def client(number: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen.port)
        received = b""
        for i in range(20):
            message = f"[{number}:{i}]".encode()
            writer.write(message)
            received += await reader.readexactly(len(message))
        writer.close()
        await writer.wait_closed()
        return received

    async def all_clients() -> list[bytes]:
        return await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(64))), 30)

    results = asyncio.run(all_clients())
    for number, received in enumerate(results):
        assert received == b"".join(f"[{number}:{i}]".encode() for i in range(20))
    assert [s.connections for s in servers] == [22, 21, 21]
    assert loop.call(proxy.stats).connections_total == 64
