"""The proxy daemon end to end: a real process, its HTTP API, real connections through it."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from heisen.errors import SystemUnavailable, UsageError
from heisen.system._process import ManagedProcess
from heisen.system._proxy_client import ProxyControl, start_proxy_daemon
from heisen.system_protocol import ROUND_TRIP_BUCKETS, LatencyHistogram, round_trip_bucket
from support import is_listening

pytestmark = pytest.mark.timeout(90)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.connections = 0
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ManagedProcess, ProxyControl]]:
    log = tmp_path_factory.mktemp("proxyd") / "proxyd.log"
    process, control = start_proxy_daemon(log, seed=11)
    try:
        yield process, control
    finally:
        control.close()
        process.stop()


@pytest.fixture
def control(daemon: tuple[ManagedProcess, ProxyControl]) -> Iterator[ProxyControl]:
    process, control = daemon
    try:
        yield control
    finally:
        assert process.alive(), process.tail()
        for name in control.proxies():
            control.delete(name)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


def ping(host: str, port: int, count: int = 1) -> list[float]:
    times = []
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(b"ping")
            got = b""
            while len(got) < 4:
                chunk = sock.recv(4 - len(got))
                assert chunk, "connection closed"
                got += chunk
            times.append(time.perf_counter() - start)
    return times


def test_proxy_lifecycle_through_the_api(control: ProxyControl, echo: EchoServer) -> None:
    assert control.version().startswith("heisen-proxyd")
    host, port = control.create("svc", [echo.address])
    assert (host, port != 0) == ("127.0.0.1", True)
    ping(host, port, count=3)
    document = control.proxies()["svc"]
    assert document["upstream"] == echo.address
    assert document["enabled"] is True
    stats = control.stats("svc")
    assert (stats.connections_total, stats.bytes_upstream, stats.bytes_downstream) == (1, 12, 12)
    control.delete("svc")
    assert not is_listening(host, port)
    assert control.proxies() == {}


def test_toxics_through_the_api(control: ProxyControl, echo: EchoServer) -> None:
    host, port = control.create("db", [echo.address])
    toxic = control.add_toxic("db", {"type": "latency", "attributes": {"latency": 50}})
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 50, "jitter": 0},
    }
    assert statistics.median(ping(host, port, count=5)) >= 0.048
    updated = control.update_toxic("db", "latency_downstream", {"attributes": {"jitter": 5}})
    assert updated["attributes"] == {"latency": 50, "jitter": 5}
    assert [t["name"] for t in control.toxics("db")] == ["latency_downstream"]
    control.remove_toxic("db", "latency_downstream")
    assert statistics.median(ping(host, port, count=5)) < 0.03
    assert control.toxics("db") == []


def test_reset_enables_every_proxy_and_removes_every_toxic(
    control: ProxyControl, echo: EchoServer
) -> None:
    host, port = control.create("a", [echo.address])
    control.create("b", [echo.address])
    control.add_toxic("a", {"type": "timeout", "attributes": {"timeout": 0}})
    control.set_enabled("b", False)
    control.reset()
    proxies = control.proxies()
    assert [proxies[n]["enabled"] for n in "ab"] == [True, True]
    assert proxies["a"]["toxics"] == []
    ping(host, port)


def test_down_through_the_api_refuses_connections(control: ProxyControl, echo: EchoServer) -> None:
    host, port = control.create("down", [echo.address])
    control.set_enabled("down", False)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=2).close()
    control.set_enabled("down", True)
    ping(host, port)


def test_upstreams_and_readiness_through_the_api(control: ProxyControl) -> None:
    servers = [EchoServer(), EchoServer()]
    try:
        host, port = control.create("front", [servers[0].address])
        control.set_upstreams("front", [s.address for s in servers])
        for _ in range(4):
            ping(host, port)
        assert [s.connections for s in servers] == [2, 2]
        control.set_ready("front", servers[0].address, False)
        for _ in range(2):
            ping(host, port)
        assert [s.connections for s in servers] == [2, 4]
        upstreams = control.proxy("front")["upstreams"]
        assert upstreams == [
            {"address": servers[0].address, "ready": False},
            {"address": servers[1].address, "ready": True},
        ]
        assert control.stats("front").upstream_connections == {
            servers[0].address: 2,
            servers[1].address: 4,
        }
    finally:
        for server in servers:
            server.close()


def test_errors_are_json_with_toxiproxy_status_codes(
    control: ProxyControl, echo: EchoServer
) -> None:
    control.create("e", [echo.address])
    with httpx.Client(base_url=control.api_url, trust_env=False) as http:
        missing = http.get("/proxies/nope")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no proxy 'nope' (proxies: e)", "status": 404}
        taken = http.post("/proxies", json={"name": "e", "upstream": echo.address})
        assert taken.status_code == 409
        assert http.post("/proxies", json={"name": "x"}).status_code == 400
        assert http.post("/proxies", json={"name": "x", "upstream": "nohost"}).status_code == 400
        assert http.post("/proxies/e/toxics", content=b"{not json").status_code == 400
        assert http.get("/proxies/e/toxics/nope").status_code == 404
        created = http.post(
            "/proxies", json={"name": "compat", "listen": "localhost:0", "upstream": echo.address}
        )
        assert created.status_code == 201
        assert http.delete("/proxies/compat").status_code == 204
    with pytest.raises(UsageError, match="already exists"):
        control.create("e", [echo.address])
    with pytest.raises(UsageError, match="no toxic 'nope'"):
        control.remove_toxic("e", "nope")
    with pytest.raises(UsageError, match="lognormal latency needs"):
        control.add_toxic("e", {"type": "latency", "attributes": {"distribution": "lognormal"}})


def test_a_taken_listen_port_is_system_unavailable(control: ProxyControl, echo: EchoServer) -> None:
    _, port = control.create("first", [echo.address])
    with pytest.raises(SystemUnavailable, match="cannot listen"):
        control.create("second", [echo.address], listen=f"127.0.0.1:{port}")


def test_unreachable_daemon_is_system_unavailable() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        with ProxyControl(f"http://127.0.0.1:{port}", timeout_s=1) as dead:
            with pytest.raises(SystemUnavailable, match="did not answer"):
                dead.version()


def test_daemon_stops_cleanly_and_frees_its_ports(tmp_path: Path, echo: EchoServer) -> None:
    process, control = start_proxy_daemon(tmp_path / "proxyd.log", seed=1)
    try:
        host, port = control.create("p", [echo.address])
        ping(host, port)
    finally:
        control.close()
        process.stop()
    assert process.returncode == 0, process.tail()
    assert not is_listening(host, port)


def test_latency_on_a_real_redis_connection(control: ProxyControl, embedded_redis) -> None:
    import redis

    host, port = control.create("redis", [f"{embedded_redis.host}:{embedded_redis.port}"])

    def ping_times(client: redis.Redis) -> list[float]:
        client.ping()  # connect first
        times = []
        for _ in range(15):
            start = time.perf_counter()
            assert client.ping() is True
            times.append(time.perf_counter() - start)
        return times

    direct = redis.Redis(host=embedded_redis.host, port=embedded_redis.port, socket_timeout=5)
    proxied = redis.Redis(host=host, port=port, socket_timeout=5)
    try:
        control.add_toxic("redis", {"type": "latency", "attributes": {"latency": 25}})
        grown = statistics.median(ping_times(proxied)) - statistics.median(ping_times(direct))
        assert 0.023 <= grown <= 0.045
        control.remove_toxic("redis", "latency_downstream")
        assert statistics.median(ping_times(proxied)) < 0.015
    finally:
        direct.close()
        proxied.close()


def test_a_proxy_document_can_be_posted_back_as_toxiproxy_clients_do(
    control: ProxyControl, echo: EchoServer
) -> None:
    control.create("saved", [echo.address])
    control.add_toxic("saved", {"type": "latency", "attributes": {"latency": 1}})
    control.set_ready("saved", echo.address, False)
    document = control.proxy("saved")
    with httpx.Client(base_url=control.api_url, trust_env=False) as http:
        response = http.post("/proxies/saved", json=document)
    assert response.status_code == 200, response.text
    assert response.json()["upstreams"] == [{"address": echo.address, "ready": False}]
    assert response.json()["toxics"][0]["attributes"] == {"latency": 1, "jitter": 0}


def test_names_with_punctuation_and_a_proxy_with_no_upstream_yet(
    control: ProxyControl, echo: EchoServer
) -> None:
    host, port = control.create("svc:api/v1", [])
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        ping(host, port)
    control.set_upstreams("svc:api/v1", [echo.address])
    ping(host, port)
    assert control.add_toxic("svc:api/v1", {"name": "t 1", "type": "slow_close"})["name"] == "t 1"
    control.remove_toxic("svc:api/v1", "t 1")


def test_round_trips_of_redis_pings_are_measured_at_the_proxy(
    control: ProxyControl, embedded_redis
) -> None:
    import redis

    host, port = control.create("timed", [f"{embedded_redis.host}:{embedded_redis.port}"])
    client = redis.Redis(host=host, port=port, socket_timeout=5)
    try:
        client.ping()  # connect first

        def pings() -> LatencyHistogram:
            before = control.stats("timed").round_trips
            for _ in range(30):
                assert client.ping() is True
            return control.stats("timed").round_trips - before

        control.add_toxic("timed", {"type": "latency", "attributes": {"latency": 20}})
        slowed = pings()
        assert slowed.count == 30
        p50 = slowed.percentile_ms(0.5)
        assert p50 is not None and 18 <= p50 <= 24, slowed
        control.remove_toxic("timed", "latency_downstream")
        plain = pings()
        assert plain.count == 30
        p50 = plain.percentile_ms(0.5)
        assert p50 is not None and p50 < 5, plain
    finally:
        client.close()


def test_a_latency_histogram_subtracts_and_gives_percentiles() -> None:
    empty = LatencyHistogram()
    assert empty.count == 0 and empty.percentile_ms(0.5) is None
    counts = [0] * ROUND_TRIP_BUCKETS
    counts[round_trip_bucket(0.001)] = 9  # 1 ms
    counts[round_trip_bucket(0.1)] = 1  # 100 ms
    later = LatencyHistogram.of(counts)
    assert later - empty == later and (later - later).count == 0
    assert later.count == 10
    p50, p99 = later.percentile_ms(0.5), later.percentile_ms(0.99)
    assert p50 is not None and 0.9 <= p50 <= 1.2
    assert p99 is not None and 90 <= p99 <= 120
    assert round_trip_bucket(0.0) == 0 and round_trip_bucket(1e6) == ROUND_TRIP_BUCKETS - 1
