"""Bursts over TLS and multi-connection HTTP/2 against real servers (hypercorn, nghttpd, h2).

What each test checks beyond "every request answered": the barrier held (no
response before release, every stream of a connection written by the one
release write), and each failure is a SystemUnavailable naming its cause.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from _h2_servers import (
    NGHTTPD,
    Certificates,
    RunningServer,
    make_certificates,
    start_hypercorn,
    start_nghttpd,
    start_uneven,
)

from heisen.errors import SystemUnavailable, UsageError
from heisen.stress._burst import BurstResult, run_burst, split_at_head_end
from heisen.stress._request import HttpRequest
from heisen.stress._tls import TlsClient
from support import free_port

needs_nghttpd = pytest.mark.skipif(
    NGHTTPD is None, reason="nghttpd is not installed (Debian/Ubuntu package nghttp2-server)"
)


def _serving(server: RunningServer) -> Iterator[RunningServer]:
    try:
        yield server
    finally:
        server.process.stop(grace_s=2)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def hypercorn_tls(
    certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("hypercorn-tls")
    yield from _serving(start_hypercorn(work, free_port(), certs=certs))


@pytest.fixture(scope="module")
def hypercorn_h2c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("hypercorn-h2c")
    yield from _serving(start_hypercorn(work, free_port(), certs=None))


@pytest.fixture(scope="module")
def nghttpd_h2c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    if NGHTTPD is None:
        pytest.skip("nghttpd is not installed (Debian/Ubuntu package nghttp2-server)")
    work = tmp_path_factory.mktemp("nghttpd-h2c")
    yield from _serving(start_nghttpd(work, free_port(), certs=None))


@pytest.fixture(scope="module")
def nghttpd_tls(
    certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    if NGHTTPD is None:
        pytest.skip("nghttpd is not installed (Debian/Ubuntu package nghttp2-server)")
    work = tmp_path_factory.mktemp("nghttpd-tls")
    yield from _serving(start_nghttpd(work, free_port(), certs=certs))


def h2_tls(certs: Certificates, **kwargs: object) -> TlsClient:
    return TlsClient.make(certs.ca, alpn=("h2",), **kwargs)  # type: ignore[arg-type]


def burst(server: RunningServer, requests: list[HttpRequest], **kwargs: object) -> BurstResult:
    return asyncio.run(run_burst(server.host, server.port, requests, **kwargs))  # type: ignore[arg-type]


def assert_released_together(result: BurstResult, per_connection: int) -> None:
    """One record per request in order, none answered early, one release write per connection."""
    assert [r.index for r in result.records] == list(range(len(result.records)))
    assert result.early_responses == 0
    stamps: dict[int | None, set[int | None]] = defaultdict(set)
    for record in result.records:
        stamps[record.local_port].add(record.sent_ns)
    assert len(stamps) == result.connections
    assert all(len(sent) == 1 and None not in sent for sent in stamps.values())
    assert all(r.sent_ns is not None and r.end_ns > r.sent_ns for r in result.records)
    per_port: dict[int | None, int] = defaultdict(int)
    for record in result.records:
        per_port[record.local_port] += 1
    assert max(per_port.values()) <= per_connection


@needs_nghttpd
def test_h2c_burst_of_1000_to_nghttpd_fills_ten_connections(nghttpd_h2c: RunningServer) -> None:
    result = burst(nghttpd_h2c, [HttpRequest.get("/hello.txt") for _ in range(1000)], http2=True)
    assert result.protocol == "h2" and result.connections == 10
    assert all(r.status == 200 and r.body == b"hello\n" for r in result.records)
    assert_released_together(result, per_connection=100)
    assert result.release_spread_s > 0  # ten writes, ten stamps


@needs_nghttpd
def test_h2_burst_of_1000_over_tls_to_nghttpd(
    nghttpd_tls: RunningServer, certs: Certificates
) -> None:
    requests = [HttpRequest.get("/hello.txt") for _ in range(1000)]
    result = burst(nghttpd_tls, requests, http2=True, tls=h2_tls(certs))
    assert result.connections == 10
    assert all(r.status == 200 and r.body == b"hello\n" for r in result.records)
    assert_released_together(result, per_connection=100)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
def test_h2_burst_to_hypercorn(
    tls: bool, hypercorn_tls: RunningServer, hypercorn_h2c: RunningServer, certs: Certificates
) -> None:
    server = hypercorn_tls if tls else hypercorn_h2c
    requests = [HttpRequest.get(f"/?i={i}") for i in range(150)]
    requests += [HttpRequest.post("/buy", b"x" * 100) for _ in range(50)]
    result = burst(server, requests, http2=True, tls=h2_tls(certs) if tls else None)
    assert result.connections == 2
    assert all(r.status == 200 and r.body.endswith(b" 2") for r in result.records)  # HTTP/2 seen
    assert len({r.body for r in result.records}) == 200  # each answered once
    assert_released_together(result, per_connection=100)


def test_http1_burst_over_tls_to_hypercorn(
    hypercorn_tls: RunningServer, certs: Certificates
) -> None:
    requests = [HttpRequest.get("/") for _ in range(30)]
    requests += [HttpRequest.post("/buy", b'{"qty": 1}') for _ in range(20)]
    result = burst(hypercorn_tls, requests, tls=TlsClient.make(certs.ca))
    assert result.protocol == "http/1.1" and result.connections == 50
    assert [r.index for r in result.records] == list(range(50))
    assert all(r.status == 200 and r.body.endswith(b" 1.1") for r in result.records)
    assert len({r.body for r in result.records}) == 50
    assert result.early_responses == 0


def test_a_smaller_stream_limit_takes_more_connections(certs: Certificates, tmp_path: Path) -> None:
    server = start_hypercorn(tmp_path, free_port(), certs=certs, max_streams=7)
    try:
        result = burst(
            server, [HttpRequest.get("/") for _ in range(50)], http2=True, tls=h2_tls(certs)
        )
    finally:
        server.process.stop(grace_s=2)
    assert result.connections == 8  # ceil(50 / 7)
    assert all(r.status == 200 for r in result.records)
    assert_released_together(result, per_connection=7)


@pytest.mark.usefixtures("no_leaked_sockets")
def test_every_connection_gets_no_more_streams_than_it_allows(tmp_path: Path) -> None:
    """Connection 1 allows 10 streams, the later ones 4; the third closes before the release."""
    server = start_uneven(tmp_path, free_port())
    try:
        result = burst(server, [HttpRequest.get("/") for _ in range(30)], http2=True, settle_s=0.3)
    finally:
        server.process.stop(grace_s=2)
    assert [r.index for r in result.records] == list(range(30))
    lost = [r for r in result.records if r.error is not None]
    assert len(lost) == 4 and all(r.error == "closed" and r.sent_ns is None for r in lost)
    answered = [r for r in result.records if r.status == 200]
    assert len(answered) == 26
    per_connection: dict[bytes, int] = defaultdict(int)
    for record in answered:
        per_connection[record.body.split(b" stream")[0]] += 1
    assert per_connection.pop(b"conn 1") == 10
    assert sorted(per_connection.values()) == [4, 4, 4, 4]


@pytest.mark.usefixtures("no_leaked_sockets")
def test_refused_streams_and_goaway_are_recorded(tmp_path: Path) -> None:
    server = start_uneven(tmp_path, free_port())
    paths = ["/", "/refuse", "/", "/goaway", "/", "/"]
    try:
        result = burst(server, [HttpRequest.get(p) for p in paths], http2=True)
    finally:
        server.process.stop(grace_s=2)
    assert [r.status for r in result.records] == [200, None, 200, None, None, None]
    assert [r.error for r in result.records] == [
        None,
        "refused",
        None,
        "refused",
        "refused",
        "refused",
    ]
    assert len({r.sent_ns for r in result.records}) == 1  # all written, in one release write


def test_bodies_spread_over_connections_by_flow_control_window(
    hypercorn_h2c: RunningServer,
) -> None:
    """100 bodies of 1,000 bytes outgrow one connection's 64 KiB window, not its 100 streams."""
    requests = [HttpRequest.post("/buy", b"x" * 1000) for _ in range(100)]
    result = burst(hypercorn_h2c, requests, http2=True)
    assert all(r.status == 200 for r in result.records)
    assert_released_together(result, per_connection=100)
    sent_per_connection: dict[int | None, int] = defaultdict(int)
    for record in result.records:
        sent_per_connection[record.local_port] += len(record.request_body)
    assert result.connections == 2
    assert max(sent_per_connection.values()) <= 65535


@pytest.mark.usefixtures("no_leaked_sockets")
def test_a_body_larger_than_the_window_is_a_usage_error(hypercorn_h2c: RunningServer) -> None:
    requests = [HttpRequest.get("/"), HttpRequest.post("/buy", b"x" * 70_000)]
    with pytest.raises(UsageError, match=r"request 1 has a body of 70000 bytes.*HTTP/1\.1"):
        burst(hypercorn_h2c, requests, http2=True)


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1"])
@pytest.mark.usefixtures("no_leaked_sockets")
def test_a_certificate_from_an_unknown_ca_is_a_clear_error(
    http2: bool, hypercorn_tls: RunningServer, certs: Certificates
) -> None:
    tls = TlsClient.make(certs.other_ca, alpn=("h2",) if http2 else ("http/1.1",))
    with pytest.raises(SystemUnavailable, match=r"TLS handshake with .* certificate verify failed"):
        burst(hypercorn_tls, [HttpRequest.get("/")] * 3, http2=http2, tls=tls)


def test_a_certificate_for_another_host_is_a_clear_error(
    hypercorn_tls: RunningServer, certs: Certificates
) -> None:
    tls = h2_tls(certs, server_hostname="example.com")
    with pytest.raises(SystemUnavailable, match=r"Hostname mismatch.*'example\.com'"):
        burst(hypercorn_tls, [HttpRequest.get("/")], http2=True, tls=tls)


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1"])
def test_insecure_accepts_any_certificate(
    http2: bool, hypercorn_tls: RunningServer, certs: Certificates
) -> None:
    alpn = ("h2",) if http2 else ("http/1.1",)
    tls = TlsClient.make(certs.other_ca, insecure=True, alpn=alpn)
    assert tls.context.verify_mode == ssl.CERT_NONE
    result = burst(hypercorn_tls, [HttpRequest.get("/")] * 5, http2=http2, tls=tls)
    assert all(r.status == 200 for r in result.records)


def test_an_h2_burst_needs_a_server_that_picks_h2(certs: Certificates, tmp_path: Path) -> None:
    server = start_hypercorn(tmp_path, free_port(), certs=certs, alpn=("http/1.1",))
    offers = {("h2",): "chose no protocol", ("h2", "http/1.1"): "chose 'http/1.1'"}
    try:
        for alpn, chose in offers.items():
            with pytest.raises(SystemUnavailable, match=rf"does not speak h2 .*ALPN.* {chose}"):
                tls = TlsClient.make(certs.ca, alpn=alpn)
                burst(server, [HttpRequest.get("/")] * 3, http2=True, tls=tls)
        plain = burst(server, [HttpRequest.get("/")] * 3, tls=TlsClient.make(certs.ca))
    finally:
        server.process.stop(grace_s=2)
    assert all(r.status == 200 for r in plain.records)


@pytest.mark.usefixtures("no_leaked_sockets")
def test_an_http1_burst_refuses_a_server_that_picks_h2(
    hypercorn_tls: RunningServer, certs: Certificates
) -> None:
    tls = TlsClient.make(certs.ca, alpn=("h2", "http/1.1"))
    with pytest.raises(SystemUnavailable, match=r"does not speak http/1.1 .*chose 'h2'"):
        burst(hypercorn_tls, [HttpRequest.get("/")] * 3, tls=tls)


def test_an_h2_burst_must_offer_h2(hypercorn_tls: RunningServer, certs: Certificates) -> None:
    with pytest.raises(UsageError, match="must offer 'h2'"):
        burst(hypercorn_tls, [HttpRequest.get("/")], http2=True, tls=TlsClient.make(certs.ca))


def test_over_tls_the_server_decrypts_only_the_prefix_before_release(certs: Certificates) -> None:
    """The held tail leaves as its own TLS record: before the release, the server has
    decrypted every request's head but its last byte, and nothing more."""
    received: list[list[tuple[int, bytes]]] = []

    class Recorder(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.chunks: list[tuple[int, bytes]] = []
            received.append(self.chunks)

        def data_received(self, data: bytes) -> None:
            self.chunks.append((time.monotonic_ns(), data))
            if b"".join(chunk for _, chunk in self.chunks).endswith(b"\r\n\r\n"):
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def scenario() -> tuple[BurstResult, int]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert, certs.key)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Recorder, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        async with server:
            tls = TlsClient.make(certs.ca)
            requests = [HttpRequest.get("/")] * 20
            return await run_burst("127.0.0.1", port, requests, tls=tls), port

    result, port = asyncio.run(scenario())
    assert all(r.status == 200 for r in result.records)
    release = min(r.sent_ns for r in result.records if r.sent_ns is not None)
    prefix, tail = split_at_head_end(HttpRequest.get("/").encode_http1(f"127.0.0.1:{port}"))
    assert len(received) == 20
    for chunks in received:
        before = b"".join(data for at, data in chunks if at < release)
        after = b"".join(data for at, data in chunks if at >= release)
        assert before == prefix and after == tail
