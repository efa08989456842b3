"""heisen.stress's public API: what chaos and fuzz use, against a real server."""

from __future__ import annotations

import heisen.stress
from heisen.schema import Inject, LoadStep, RequestTemplate
from heisen.stress import RequestFactory, StreamingLoad
from support import wait_until


def test_the_public_names_are_sorted_and_importable() -> None:
    names = heisen.stress.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(heisen.stress, name) is not None, name
    for wanted in ("StreamingLoad", "check_invariants", "run_burst", "RequestRecord", "summarize"):
        assert wanted in names


def _load(port: int, rate: float, during: float, path: str = "/") -> StreamingLoad:
    templates = {"get": RequestTemplate.model_validate({"method": "GET", "path": path})}
    factory = RequestFactory(templates, trial=1, seed=1, run_id="t")
    step = LoadStep(inject=Inject(rate=rate, during=during, request="get"))
    return StreamingLoad(
        step, factory, address=("127.0.0.1", port), default_request="get", timeout_s=5
    )


def test_streaming_load_streams_records_while_it_runs(raw_server) -> None:
    load = _load(raw_server.port, rate=50, during=1.5)
    load.start()
    wait_until(lambda: len(load.records()) >= 10, timeout=5, what="10 records while it runs")
    assert load.running() and len(load.records()) >= 10  # seen before the load ended
    load.join(10)
    assert not load.running() and load.error is None
    records = load.records()
    assert load.missing_records() is None and 60 <= len(records) <= 80
    assert all(r.status == 200 and r.intended_ns is not None for r in records)


def test_a_stopped_streaming_load_keeps_one_record_per_request(raw_server) -> None:
    load = _load(raw_server.port, rate=100, during=30, path="/stall?ms=300")
    load.start()
    wait_until(lambda: load.records(), timeout=5, what="a first answered request")
    load.stop()
    assert not load.running() and load.error is None  # a cancelled load is no error
    records = load.records()
    assert records and load.missing_records() is None
    assert any(r.error == "timeout" for r in records)  # in flight when it was cancelled
