"""Open and closed load models against real loopback servers."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from typing import Any

import pytest

from heisen.errors import SystemUnavailable
from heisen.stress._latency import summarize
from heisen.stress._models import constant, inject, pause, ramp_inject, ramp_offsets
from heisen.stress._records import RequestRecord
from heisen.stress._request import HttpRequest, Repeat
from heisen.stress._workers import ModelSpec, resolve_workers, run_distributed
from support import free_port, wait_until_async

Server = Any


def get(path: str = "/") -> Callable[[int], HttpRequest]:
    return Repeat(HttpRequest.get(path))


def test_open_model_keeps_its_rate(raw_server: Server) -> None:
    records = asyncio.run(
        inject(200, 1.5, host=raw_server.host, port=raw_server.port, make_request=get())
    )
    assert len(records) == 300
    assert sorted(r.index for r in records) == list(range(300))
    intended = sorted(r.intended_ns for r in records if r.intended_ns is not None)
    assert abs((intended[-1] - intended[0]) / 1e9 - 299 / 200) < 0.01
    lags = [r.sent_ns - r.intended_ns for r in records]  # type: ignore[operator]
    assert min(lags) >= 0
    assert statistics.median(lags) < 20e6, "requests left much later than intended"
    summary = summarize(records)
    assert summary.errors == {} and summary.status_codes == {"200": 300}
    assert 150 < summary.rps < 250 and summary.corrected


def test_open_model_corrects_coordinated_omission(raw_server: Server) -> None:
    def make(i: int) -> HttpRequest:
        return HttpRequest.get("/block?ms=400" if i == 40 else "/")

    records = asyncio.run(
        inject(
            100, 1.5, host=raw_server.host, port=raw_server.port, make_request=make,
            max_connections=2,
        )
    )  # fmt: skip
    summary = summarize(records)
    assert summary.requests == 150 and summary.errors == {}
    corrected, uncorrected = summary.latency_ms, summary.latency_uncorrected_ms
    assert corrected["max"] >= 300
    assert corrected["p90"] > 3 * uncorrected["p90"], (corrected, uncorrected)


def test_ramp_offsets_integrate_the_rate() -> None:
    offsets = [t for _, t in zip(range(10_000), ramp_offsets(0, 100, 2.0), strict=False)]
    assert sum(1 for t in offsets if t < 2.0) == 100
    assert sum(1 for t in offsets if t < 1.0) == 25  # a quarter of the area in the first half
    falling = list(ramp_offsets(100, 0, 2.0))
    assert 100 <= len(falling) <= 101 and falling[-1] <= 2.0


def test_ramp_inject_sends_the_area_under_the_ramp(raw_server: Server) -> None:
    records = asyncio.run(
        ramp_inject(50, 150, 1.0, host=raw_server.host, port=raw_server.port, make_request=get())
    )
    assert len(records) == 100


def test_closed_model_loops_on_its_connections(raw_server: Server) -> None:
    records = asyncio.run(
        constant(4, 0.5, host=raw_server.host, port=raw_server.port, make_request=get())
    )
    assert len(records) > 100
    assert len({r.connection for r in records}) == 4
    assert all(r.status == 200 for r in records)
    assert all(r.intended_ns is None for r in records)
    bounded = asyncio.run(
        constant(
            3, 30, host=raw_server.host, port=raw_server.port, make_request=get(),
            max_requests=50,
        )
    )  # fmt: skip
    assert sorted(r.index for r in bounded) == list(range(50))


def test_server_going_away_is_recorded_as_refused(server_factory: Any) -> None:
    server = server_factory("raw")

    async def scenario() -> list[RequestRecord]:
        answered = 0
        twenty_answered = asyncio.Event()

        def count_answers(record: RequestRecord) -> None:
            nonlocal answered
            answered += record.status == 200
            if answered >= 20:
                twenty_answered.set()

        task = asyncio.create_task(
            inject(
                100, 1.2, host=server.host, port=server.port, make_request=get(),
                timeout_s=1.0, connect_timeout_s=1.0, sink=count_answers,
            )
        )  # fmt: skip
        await asyncio.wait_for(twenty_answered.wait(), timeout=30)
        await asyncio.to_thread(server.process.kill)
        return await task

    records = asyncio.run(scenario())
    assert len(records) == 120
    summary = summarize(records)
    assert summary.status_codes.get("200", 0) >= 20
    assert summary.errors.get("refused", 0) >= 20, summary.errors


def test_unreachable_target_raises() -> None:
    port = free_port()
    with pytest.raises(SystemUnavailable, match="nothing is listening"):
        asyncio.run(inject(10, 1, host="127.0.0.1", port=port, make_request=get()))
    with pytest.raises(SystemUnavailable, match="nothing is listening"):
        asyncio.run(constant(2, 1, host="127.0.0.1", port=port, make_request=get()))


@pytest.mark.usefixtures("no_leaked_sockets")
@pytest.mark.parametrize("model", ["inject", "constant"])
def test_cancel_stops_cleanly_and_keeps_records(raw_server: Server, model: str) -> None:
    kept: list[RequestRecord] = []

    async def scenario() -> None:
        kwargs: dict[str, Any] = {
            "host": raw_server.host, "port": raw_server.port, "make_request": get(),
            "sink": kept.append,
        }  # fmt: skip
        if model == "inject":
            task = asyncio.create_task(inject(200, 30, **kwargs))
        else:
            task = asyncio.create_task(constant(5, 30, **kwargs))
        await wait_until_async(lambda: len(kept) > 20, timeout=10, what="records kept")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=3)

    asyncio.run(scenario())
    assert len(kept) > 20


def test_pause_sends_nothing() -> None:
    assert asyncio.run(pause(0.05)) == []


@pytest.mark.slow
def test_workers_split_the_load(raw_server: Server) -> None:
    assert resolve_workers(3) == 3 and resolve_workers("auto") >= 1
    spec = ModelSpec(
        "inject", raw_server.host, raw_server.port, get(), during_s=1.0, rate_per_s=100
    )
    records = asyncio.run(run_distributed(spec, workers=2))
    assert sorted(r.index for r in records) == list(range(100))
    assert len({r.connection // 1_000_000 for r in records}) == 2
    assert all(r.status == 200 for r in records)


def test_queued_requests_keep_their_own_send_time(raw_server: Server) -> None:
    """A connection that takes the next queued request must not lend its send time to the last record."""
    records = asyncio.run(
        inject(
            100, 0.5, host=raw_server.host, port=raw_server.port, make_request=get("/stall?ms=30"),
            max_connections=2,
        )
    )  # fmt: skip
    assert len(records) == 50 and all(r.error is None for r in records)
    service_ms = sorted((r.latency_ns or 0) / 1e6 for r in records)
    assert service_ms[0] >= 25, "each request stalls 30 ms on the server: none can take less"
    assert all(r.sent_ns is not None and r.intended_ns is not None for r in records)
    assert all(r.sent_ns >= r.intended_ns for r in records)  # type: ignore[operator]
