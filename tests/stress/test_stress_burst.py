"""The HTTP/1.1 last-byte-synchronized burst against real loopback servers."""

from __future__ import annotations

import asyncio
import json
import statistics
import urllib.request
from typing import Any

import pytest

from heisen.errors import SystemUnavailable
from heisen.stress._burst import run_burst
from heisen.stress._request import HttpRequest
from support import free_port, wait_until_async

Server = Any


def arrivals(server: Server) -> list[int]:
    url = f"http://{server.host}:{server.port}/_arrivals"
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(json.loads(response.read()))


def spread_ms(times: list[int]) -> tuple[float, float]:
    """(p10-p90, max-min) of arrival times, in ms."""
    ordered = sorted(times)
    deciles = statistics.quantiles(ordered, n=10)
    return (deciles[-1] - deciles[0]) / 1e6, (ordered[-1] - ordered[0]) / 1e6


def test_burst_of_200_arrives_together(raw_server: Server) -> None:
    # The server stamps each request when its single process gets to read it, so
    # on a busy machine its own scheduling adds to the spread: the burst must
    # arrive together in at least one of three tries.
    arrivals(raw_server)
    spreads: list[float] = []
    for _ in range(3):
        requests = [HttpRequest.get(f"/?i={i}") for i in range(200)]
        result = asyncio.run(run_burst(raw_server.host, raw_server.port, requests))
        assert result.connections == 200
        assert [r.index for r in result.records] == list(range(200))
        assert all(r.status == 200 and r.error is None and r.body == b"ok" for r in result.records)
        assert len({r.connection for r in result.records}) == 200
        assert result.release_spread_s < 0.1
        for record in result.records:
            assert record.sent_ns is not None and record.sent_ns <= record.end_ns
        seen = arrivals(raw_server)
        assert len(seen) == 200
        spreads.append(spread_ms(seen)[0])
        if spreads[-1] < 20:
            return
    pytest.fail(f"server saw every burst spread over 20 ms or more (p10-p90: {spreads})")


def test_burst_with_bodies_against_aiohttp(aiohttp_server: Server) -> None:
    requests = [HttpRequest.post("/echo", f"payload-{i}".encode()) for i in range(50)]
    result = asyncio.run(run_burst(aiohttp_server.host, aiohttp_server.port, requests))
    assert [r.body for r in result.records] == [f"payload-{i}".encode() for i in range(50)]
    assert all(r.request_body == r.body for r in result.records)


def test_chunked_and_close_delimited_responses(raw_server: Server, aiohttp_server: Server) -> None:
    expected = b"hello chunked " + b"world" * 2000
    for server in (raw_server, aiohttp_server):
        result = asyncio.run(run_burst(server.host, server.port, [HttpRequest.get("/chunked")] * 3))
        assert all(r.status == 200 and r.body == expected for r in result.records)
    result = asyncio.run(run_burst(raw_server.host, raw_server.port, [HttpRequest.get("/http10")]))
    assert result.records[0].body == b"until close" and result.records[0].error is None


def test_errors_are_classified(raw_server: Server) -> None:
    requests = [
        HttpRequest.get("/reset"),
        HttpRequest.get("/close"),
        HttpRequest.get("/garbage"),
        HttpRequest.get("/stall?ms=3000"),
        HttpRequest.get("/"),
    ]
    result = asyncio.run(run_burst(raw_server.host, raw_server.port, requests, timeout_s=0.5))
    errors = [r.error for r in result.records]
    assert errors == ["reset", "closed", "protocol", "timeout", None]
    assert result.records[3].end_ns - result.records[3].sent_ns >= 0.4e9  # type: ignore[operator]


def test_unreachable_target_is_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(SystemUnavailable, match=f"nothing is listening on 127.0.0.1:{port}"):
        asyncio.run(run_burst("127.0.0.1", port, [HttpRequest.get("/")] * 3))


def test_cancelled_burst_closes_its_connections(raw_server: Server) -> None:
    arrivals(raw_server)  # forget what earlier tests sent
    seen: list[int] = []

    async def all_five_in_flight() -> bool:
        seen.extend(await asyncio.to_thread(arrivals, raw_server))
        return len(seen) >= 5

    async def scenario() -> None:
        task = asyncio.create_task(
            run_burst(raw_server.host, raw_server.port, [HttpRequest.get("/stall?ms=5000")] * 5)
        )
        await wait_until_async(
            all_five_in_flight, timeout=4, what="the 5 requests reached the server"
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
