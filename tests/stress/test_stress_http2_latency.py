"""HTTP/2 single-packet bursts, latency histograms and summaries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from heisen.errors import SystemUnavailable
from heisen.stress._burst import run_burst
from heisen.stress._latency import LatencyRecorder, summarize
from heisen.stress._records import RequestRecord
from heisen.stress._request import HttpRequest
from support import free_port

Server = Any


def test_h2_burst_gets_every_response(h2_server: Server) -> None:
    requests = [HttpRequest.get(f"/item?i={i}") for i in range(30)]
    requests += [HttpRequest.post("/buy", f"body-{i}".encode()) for i in range(20)]
    result = asyncio.run(run_burst(h2_server.host, h2_server.port, requests, http2=True))
    assert result.protocol == "h2" and result.connections == 1
    assert [r.index for r in result.records] == list(range(50))
    assert all(r.status == 200 and r.error is None for r in result.records)
    assert result.records[3].body == b"ok /item?i=3 0"
    assert result.records[45].body == b"ok /buy 7"
    assert len({r.connection for r in result.records}) == 50


def test_h2_burst_uses_more_connections_past_the_stream_limit(h2_server: Server) -> None:
    requests = [HttpRequest.get("/") for _ in range(25)]
    result = asyncio.run(
        run_burst(h2_server.host, h2_server.port, requests, http2=True, streams_per_connection=10)
    )
    assert result.connections == 3
    assert all(r.status == 200 for r in result.records)


def test_h2_unreachable() -> None:
    port = free_port()
    with pytest.raises(SystemUnavailable, match=f"nothing is listening on 127.0.0.1:{port}"):
        asyncio.run(run_burst("127.0.0.1", port, [HttpRequest.get("/")], http2=True))


def test_latency_recorder_percentiles_and_merge() -> None:
    first, second = LatencyRecorder(), LatencyRecorder()
    for ms in range(1, 501):
        first.record_ns(ms * 1_000_000)
    for ms in range(501, 1001):
        second.record_ns(ms * 1_000_000)
    merged = LatencyRecorder.decode(first.encode()).merge(second)
    assert merged.count == 1000
    p = merged.percentiles_ms()
    assert list(p) == ["p50", "p75", "p90", "p95", "p99", "p99.9", "max"]
    assert p["p50"] == pytest.approx(500, rel=0.01)
    assert p["p99"] == pytest.approx(990, rel=0.01)
    assert p["max"] == pytest.approx(1000, rel=0.01)
    assert LatencyRecorder().percentiles_ms()["p99"] == 0.0


def _record(i: int, intended: int | None, sent: int | None, end: int, **kw: Any) -> RequestRecord:
    fields: dict[str, Any] = {"status": 200, "error": None} | kw
    return RequestRecord(
        i, 1, "GET", "/", intended, sent, end, fields["status"], fields["error"], b"", b""
    )


def test_summarize_counts_and_corrects() -> None:
    ms = 1_000_000
    records = [
        _record(0, 0, 0, 10 * ms),
        _record(1, 10 * ms, 100 * ms, 110 * ms),  # queued 90 ms behind a slow one
        _record(2, 20 * ms, 110 * ms, 120 * ms, status=503),
        _record(3, 30 * ms, 120 * ms, 1000 * ms, status=None, error="timeout"),
        _record(4, 40 * ms, None, 1000 * ms, status=None, error="timeout"),
    ]
    summary = summarize(records)
    assert summary.requests == 5
    assert summary.duration_s == pytest.approx(1.0)
    assert summary.rps == pytest.approx(5.0)
    assert summary.status_codes == {"200": 2, "503": 1}
    assert summary.errors == {"timeout": 2}
    assert summary.latency_ms["p50"] == pytest.approx(100, rel=0.01)
    assert summary.latency_uncorrected_ms["p50"] == pytest.approx(10, rel=0.01)
    assert summary.to_dict()["latency_ms"]["max"] == pytest.approx(970, rel=0.01)
