"""Every request recorded, under every server (issue 14, part 2).

The counter in `_counter_server.py` dispatches `POST /hit` as soon as it has
the request head (HTTP/1.1) or the HEADERS frame (HTTP/2) and never reads the
body, like aiohttp, Node or Go handlers that ignore it. A burst barrier that
holds back a *body* byte lets such a server answer before the release: those
answers were lost from the history and a correct counter looked violated.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from heisen.oracle.checkers import check
from heisen.oracle.history import Operation
from heisen.schema import LoadStep, RequestTemplate
from heisen.stress._burst import run_burst
from heisen.stress._history import operations
from heisen.stress._load import run_steps
from heisen.stress._models import constant, inject
from heisen.stress._records import RequestRecord, SendCount, missing_records
from heisen.stress._render import RequestFactory
from heisen.stress._request import HttpRequest, Repeat
from heisen.system._process import ManagedProcess, spawn
from support import free_port, heisen, wait_for_port

SERVER = Path(__file__).with_name("_counter_server.py")
HIT = HttpRequest.post("/hit", b'{"by": 1}', (("Content-Type", "application/json"),))


@dataclass(frozen=True)
class Counter_:
    host: str
    port: int
    process: ManagedProcess

    def get(self, path: str) -> Any:
        url = f"http://{self.host}:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        url = f"http://{self.host}:{self.port}/reset"
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).close()


def _start(kind: str, log_dir: Path) -> Counter_:
    port = free_port()
    process = spawn(
        f"counter-{kind}",
        [sys.executable, str(SERVER), kind, str(port)],
        log_path=log_dir / f"counter-{kind}.log",
    )
    if not wait_for_port("127.0.0.1", port, deadline_s=20):
        process.stop()
        raise RuntimeError(f"counter server ({kind}) did not start:\n{process.tail()}")
    return Counter_("127.0.0.1", port, process)


@pytest.fixture(scope="module")
def counters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Counter_]]:
    """`aiohttp`: aiohttp.web; `raw`: HTTP/1.1 and h2c on one port, dispatching on the head."""
    log_dir = tmp_path_factory.mktemp("counters")
    started: dict[str, Counter_] = {}
    try:
        for kind in ("aiohttp", "raw"):
            started[kind] = _start(kind, log_dir)
        yield started
    finally:
        for server in started.values():
            server.process.stop(grace_s=2)


# server kind, http2
SERVERS = [("aiohttp", False), ("raw", False), ("raw", True)]
IDS = ["http1-aiohttp", "http1-raw", "h2-raw"]


@pytest.mark.parametrize(("kind", "http2"), SERVERS, ids=IDS)
def test_a_head_dispatching_server_answers_nothing_before_release(
    counters: dict[str, Counter_], kind: str, http2: bool
) -> None:
    server = counters[kind]
    server.get("/_dispatches")
    result = asyncio.run(run_burst(server.host, server.port, [HIT] * 100, http2=http2))
    dispatched = server.get("/_dispatches")
    assert len(result.records) == 100 and result.early_responses == 0
    assert all(r.status == 200 and r.error is None for r in result.records)
    release = min(r.sent_ns for r in result.records if r.sent_ns is not None)
    assert len(dispatched) == 100
    early = sum(t < release for t in dispatched)
    assert early == 0, f"the server dispatched {early} of 100 requests before the release"
    assert all(r.sent_ns is not None and r.sent_ns <= r.end_ns for r in result.records)
    counts = sorted(json.loads(r.body)["count"] for r in result.records)
    assert len(set(counts)) == 100, "each hit was counted once, behind the lock"


def test_an_answer_before_release_is_recorded_and_counted(counters: dict[str, Counter_]) -> None:
    server = counters["raw"]
    early = HttpRequest.post("/early", b'{"by": 1}')
    result = asyncio.run(run_burst(server.host, server.port, [early] * 20 + [HIT] * 5))
    assert len(result.records) == 25 and result.early_responses == 20
    assert [r.index for r in result.records] == list(range(25))
    for record in result.records[:20]:
        assert record.status == 200 and record.body == b"early" and record.error is None
        assert record.sent_ns is not None and record.sent_ns < record.end_ns
    release = min(r.sent_ns for r in result.records[20:] if r.sent_ns is not None)
    assert all(r.end_ns < release for r in result.records[:20])


def templates(http2: bool) -> dict[str, RequestTemplate]:
    return {
        "hit": RequestTemplate.model_validate(
            {"method": "POST", "path": "/hit", "json": {"by": 1}, "http2": http2,
             "history": {"f": "add", "key": "c", "value": "request.by"}}
        ),
        "read": RequestTemplate.model_validate(
            {"method": "GET", "path": "/count",
             "history": {"f": "read", "key": "c", "value": "response.value"}}
        ),
    }  # fmt: skip


def steps(*raw: dict[str, Any]) -> list[LoadStep]:
    return [LoadStep.model_validate(step) for step in raw]


BURST_THEN_READ = steps({"burst": {"requests": 100, "request": "hit"}},
                        {"burst": {"requests": 1, "request": "read"}})  # fmt: skip


@pytest.mark.slow
def test_fifty_bursts_record_every_add_and_the_counter_holds(counters: dict[str, Counter_]) -> None:
    """The raw server over HTTP/1.1; aiohttp and HTTP/2 go through `heisen stress` below."""
    server, http2 = counters["raw"], False
    specs = {name: t.history for name, t in templates(http2).items() if t.history}
    for trial in range(1, 51):
        server.reset()
        factory = RequestFactory(templates(http2), trial=trial, seed=1, run_id="t")
        outcome = asyncio.run(
            run_steps(BURST_THEN_READ, factory, host=server.host, port=server.port,
                      templates=templates(http2), timeout_s=10)
        )  # fmt: skip
        assert outcome.requests_sent == 101 and outcome.missing_records() is None
        assert outcome.early_responses == 0
        assert all(r.status == 200 for r in outcome.records), f"trial {trial}"
        ops = operations(outcome.records, factory.sent, specs)
        adds = Counter(op["type"] for op in ops if op["f"] == "add")
        assert adds == {"invoke": 100, "ok": 100}, f"trial {trial}: {adds}"
        history = [Operation.from_dict({**op, "index": i}) for i, op in enumerate(ops)]
        result = check(history, "counter")
        assert result.valid is True, f"trial {trial}: {result.violations[:1]}"
        assert [op["value"] for op in ops if op["f"] == "read" and op["type"] == "ok"] == [100]


PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: counter
seed: 3
services:
  counter: {url: "http://127.0.0.1:PORT"}
scenario:
  setup:
    - http: {method: POST, path: /reset}
  requests:
    hit:
      method: POST
      path: /hit
      json: {by: 1}
      http2: HTTP2
      history: {f: add, key: c, value: request.by}
    read:
      method: GET
      path: /count
      history: {f: read, key: c, value: response.value}
  load:
    - burst: {requests: 100, request: hit}
    - burst: {requests: 1, request: read}
invariants:
  - name: counter-holds
    history: counter
phases:
  stress:
    trials: 50
"""


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "http2"), [SERVERS[0], SERVERS[2]], ids=[IDS[0], IDS[2]])
def test_heisen_stress_finds_no_violation_in_a_correct_counter(
    counters: dict[str, Counter_], kind: str, http2: bool, tmp_path: Path
) -> None:
    server = counters[kind]
    pipeline = tmp_path / "pipeline.yaml"
    body = PIPELINE.replace("PORT", str(server.port)).replace("HTTP2", str(http2).lower())
    pipeline.write_text(body)
    run_dir = tmp_path / "run"
    result = heisen("stress", str(pipeline), "--run-dir", str(run_dir), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    stress = yaml.safe_load((run_dir / "manifest.yaml").read_text())["phases"]["stress"]
    assert stress["outputs"]["trials"] == 50 and stress["outputs"]["violations"] == 0
    assert stress["outputs"]["status_codes"] == {"200": 50 * 101}
    lines = [
        json.loads(line) for line in (run_dir / "stress-history.jsonl").read_text().splitlines()
    ]
    for trial in range(1, 51):
        adds = Counter(op["type"] for op in lines if op["trial"] == trial and op["f"] == "add")
        assert adds == {"invoke": 100, "ok": 100}, f"trial {trial}: {adds}"


def test_cancelled_models_record_what_was_queued_and_in_flight(
    counters: dict[str, Counter_],
) -> None:
    server = counters["raw"]
    slow = Repeat(HttpRequest.get("/slow?ms=5000"))

    async def cancel_after(model: Any, seconds: float) -> None:
        task = asyncio.create_task(model)
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)

    kept: list[RequestRecord] = []
    count = SendCount()
    open_model = inject(200, 30, host=server.host, port=server.port, make_request=slow,
                        max_connections=2, sink=kept.append, count=count)  # fmt: skip
    asyncio.run(cancel_after(open_model, 0.4))
    assert count.requests > 40 and missing_records(kept, count.requests) is None
    assert all(r.error == "timeout" for r in kept)
    assert sum(r.sent_ns is not None for r in kept) == 2, "two in flight, the rest queued"

    kept.clear()
    count = SendCount()
    closed_model = constant(3, 30, host=server.host, port=server.port, make_request=slow,
                            sink=kept.append, count=count)  # fmt: skip
    asyncio.run(cancel_after(closed_model, 0.3))
    assert count.requests == len(kept) == 3 and all(r.error == "timeout" for r in kept)


MODELS = {
    "inject": {"inject": {"rate": 200, "during": "0.5s", "request": "hit"}},
    "ramp_inject": {"ramp_inject": {"from": 100, "to": 300, "during": "0.5s", "request": "hit"}},
    "constant": {"constant": {"copies": 4, "during": "0.3s", "request": "hit"}},
}


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_every_model_has_one_record_per_request_sent(
    counters: dict[str, Counter_], workers: int
) -> None:
    server = counters["aiohttp"]
    server.reset()
    # Each sustained step starts its own worker processes: with 2 workers, one such step.
    models = list(MODELS.values()) if workers == 1 else [MODELS["ramp_inject"]]
    load = steps(
        {"burst": {"requests": 30, "request": "hit"}},
        *models,
        {"pause": {"during": "0.05s"}},
        {"burst": {"requests": 1, "request": "read"}},
    )
    factory = RequestFactory(templates(False), trial=1, seed=1, run_id="t")
    outcome = asyncio.run(
        run_steps(load, factory, host=server.host, port=server.port, templates=templates(False),
                  timeout_s=10, workers=workers)
    )  # fmt: skip
    assert outcome.missing_records() is None
    assert outcome.requests_sent == len(outcome.records) > 30 + 90 + 1
    assert len({r.index for r in outcome.records}) == len(outcome.records)
    assert all(r.status == 200 for r in outcome.records)
    # A connection id is one history process: no two steps share one.
    by_connection: dict[int, set[str]] = {}
    for record in outcome.records:
        by_connection.setdefault(record.connection, set()).add(factory.sent[record.index].name)
    assert by_connection[max(by_connection)] == {"read"}
    specs = {name: t.history for name, t in templates(False).items() if t.history}
    ops = operations(outcome.records, factory.sent, specs)
    read = next(op for op in ops if op["f"] == "read" and op["type"] == "ok")
    assert read["value"] == len(outcome.records) - 1
    assert check([Operation.from_dict({**op, "index": i}) for i, op in enumerate(ops)],
                 "counter").valid is True  # fmt: skip


def test_refused_connects_each_get_their_own_process(server_factory: Any) -> None:
    server = server_factory("raw")

    async def scenario() -> list[RequestRecord]:
        task = asyncio.create_task(
            inject(100, 1.0, host=server.host, port=server.port, make_request=Repeat(HIT),
                   timeout_s=1.0, connect_timeout_s=1.0, count=count)
        )  # fmt: skip
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.process.kill)
        return await task

    count = SendCount()
    records = asyncio.run(scenario())
    assert missing_records(records, count.requests) is None and count.requests == 100
    refused = [r for r in records if r.error == "refused"]
    assert len(refused) >= 20
    assert len({r.connection for r in refused}) == len(refused)
    assert all(r.connection > 0 for r in refused)


def test_a_mismatch_names_both_numbers() -> None:
    record = RequestRecord(0, 1, "GET", "/", None, 1, 2, 200, None, b"", b"")
    assert missing_records([record], 1) is None
    assert missing_records([record], 2) == (
        "2 requests sent but 1 records: the load engine lost or duplicated a record; "
        "the trial cannot be judged"
    )
    message = missing_records([record, record], 2)
    assert message is not None and "2 requests sent but 2 records (1 of them duplicates" in message
