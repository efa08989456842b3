"""The HTTP/1.1 release from one or two threads: every tail written, every request recorded."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from _h2_servers import make_certificates

from heisen.stress._burst import default_settle_s, run_burst
from heisen.stress._release import PARALLEL_CORES, PARALLEL_FROM
from heisen.stress._request import HttpRequest
from heisen.stress._tls import TlsClient

Server = Any

two_cores = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="a second release thread needs a second core"
)


def _echo_burst(server: Server, n: int, threads: int | None) -> Any:
    requests = [HttpRequest.post(f"/echo?i={i}", f"payload-{i}".encode()) for i in range(n)]
    return asyncio.run(run_burst(server.host, server.port, requests, release_threads=threads))


@two_cores
def test_two_threads_release_every_connection_and_record_every_answer(
    raw_server: Server,
) -> None:
    result = _echo_burst(raw_server, 300, threads=2)
    assert result.release_threads == 2
    assert [r.index for r in result.records] == list(range(300))
    assert [r.body for r in result.records] == [f"payload-{i}".encode() for i in range(300)]
    assert all(r.status == 200 and r.error is None for r in result.records)
    assert all(r.sent_ns is not None and r.sent_ns <= r.end_ns for r in result.records)
    assert result.early_responses == 0


@two_cores
def test_the_caller_keeps_its_cores_after_a_two_thread_release(raw_server: Server) -> None:
    before = os.sched_getaffinity(0)
    _echo_burst(raw_server, PARALLEL_FROM, threads=2)
    assert os.sched_getaffinity(0) == before


def test_a_large_burst_gets_a_second_thread_only_where_the_server_keeps_two_cores(
    raw_server: Server,
) -> None:
    assert _echo_burst(raw_server, 20, threads=None).release_threads == 1
    large = _echo_burst(raw_server, PARALLEL_FROM, threads=None)
    cores = len(os.sched_getaffinity(0))
    assert large.release_threads == (2 if cores >= PARALLEL_CORES else 1)
    assert all(r.status == 200 for r in large.records)


def test_a_tail_larger_than_the_send_buffer_is_finished_by_the_transport(
    raw_server: Server,
) -> None:
    # Several MiB cannot go out in one non-blocking write: the kernel takes what
    # fits at the release and the transport sends the rest; the server answers
    # only once it has every byte its Content-Length announced.
    bodies = [bytes([65 + i]) * (6 * 1024 * 1024) for i in range(3)]
    requests = [HttpRequest.post("/echo", body) for body in bodies]
    result = asyncio.run(
        run_burst(raw_server.host, raw_server.port, requests, release_threads=1, timeout_s=30)
    )
    assert [r.status for r in result.records] == [200, 200, 200]
    for record, body in zip(result.records, bodies, strict=True):
        assert record.body == body[: len(record.body)] and record.body


def test_the_settle_grows_with_the_burst_and_stops_at_twenty_milliseconds() -> None:
    assert default_settle_s(2) < 0.002
    assert default_settle_s(2) < default_settle_s(64) < default_settle_s(150)
    assert default_settle_s(1000) == default_settle_s(10_000) == 0.02


class _Answering(asyncio.Protocol):
    """Answers each complete GET head; counts the bytes of every read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\r\n\r\n" in self.pending:
            _, _, self.pending = self.pending.partition(b"\r\n\r\n")
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@two_cores
def test_a_tls_burst_releases_one_byte_per_connection_from_two_threads(tmp_path: Path) -> None:
    # The tail is sealed into its TLS record before the release and all of it
    # but the last byte goes out with the prime, so the release writes one
    # byte per connection straight to its socket, threads included.
    certs = make_certificates(tmp_path)

    async def scenario() -> Any:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert, certs.key)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Answering, "127.0.0.1", 0, ssl=context, backlog=512)
        port = server.sockets[0].getsockname()[1]
        async with server:
            requests = [HttpRequest.get(f"/?i={i}") for i in range(PARALLEL_FROM)]
            tls = TlsClient.make(certs.ca)
            return await run_burst("127.0.0.1", port, requests, tls=tls, release_threads=2)

    result = asyncio.run(scenario())
    assert result.release_threads == 2
    assert [r.index for r in result.records] == list(range(PARALLEL_FROM))
    assert all(r.status == 200 and r.body == b"ok" for r in result.records)
    assert result.early_responses == 0
