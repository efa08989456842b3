"""What keeping a record of every request adds to a trial's wall time.

    .venv/bin/python bench/bench_records.py [--requests 100] [--trials 30]

A trial here is what the scenario engine does per trial: a setup call
(`POST /reset`), a burst of N `POST /hit` through `run_steps` (heisen's load
engine, which keeps one `RequestRecord` per request), an `http:` probe
(`GET /count`), then the bookkeeping that makes a verdict checkable: the records-equal-requests check, the load variables
`expect:` reads (`load.hit.ok`), the most requests in flight, the latency
summary, and the history (invoke/completion operations, appended as JSON
lines and checked against the counter model).

Record keeping's share is (checking records against the requests sent +
writing the history + building the N records) / trial; checking's share
(load variables, overlap, latency summary, the history model) is printed
beside it. Building the records is timed apart: N `RequestRecord`s made
again from the trial's own values. The peer, in the same run and against the same
server, is an `asyncio.gather` of the same N requests on an aiohttp session
that keeps nothing.

The server is a minimal aiohttp counter in its own process on 127.0.0.1.

Measured 2026-12-01 on the 2-core machine, quiet (load average 0.2), two
runs of 30 trials: a trial took 76.0 / 81.0 ms; record keeping 3.83% /
4.32% of it (2.4-2.5 ms checking and writing, 0.8-0.9 ms building the 100
records); checking what was kept 4.47% / 4.49% (3.5 ms); the aiohttp gather
of the same 100 requests, keeping nothing, 58.7 / 65.3 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

SERVER = """
import os, sys
from aiohttp import web
count = 0
async def hit(request):
    global count
    count += 1
    return web.json_response({"count": count})
async def reset(request):
    global count
    count = 0
    return web.json_response({"count": 0})
async def read(request):
    return web.json_response({"count": count})
app = web.Application()
app.add_routes([web.post("/hit", hit), web.post("/reset", reset), web.get("/count", read)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()

    from heisen.system import free_port, wait_for_port

    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "server.py"
        script.write_text(SERVER)
        server = subprocess.Popen([sys.executable, str(script), str(port)])
        try:
            if not wait_for_port("127.0.0.1", port, 15.0):
                raise SystemExit("the counter server did not start")
            heisen = [
                _heisen_trial(port, args.requests, Path(scratch), t) for t in range(args.trials)
            ]
            gather = [asyncio.run(_gather(port, args.requests)) for _ in range(args.trials)]
        finally:
            server.terminate()
            server.wait()
    _report(args, heisen, gather)


def _heisen_trial(port: int, n: int, scratch: Path, trial: int) -> dict[str, float]:
    from heisen.oracle.checkers import check
    from heisen.oracle.history import Operation
    from heisen.oracle.probes import http_probe
    from heisen.schema import Burst, HistorySpec, LoadStep, RequestTemplate
    from heisen.stress import _history
    from heisen.stress._latency import summarize
    from heisen.stress._load import run_steps
    from heisen.stress._load_facts import load_variables, max_in_flight
    from heisen.stress._render import RequestFactory

    spec = HistorySpec(f="add", key="hits", value="request.by")
    templates = {"hit": RequestTemplate(method="POST", path="/hit", json={"by": 1}, history=spec)}
    factory = RequestFactory(templates, trial=trial, seed=1, run_id="bench")
    steps = [LoadStep(burst=Burst(requests=n, request="hit"))]
    base = f"http://127.0.0.1:{port}"
    began = time.perf_counter()
    http_probe(base, "POST", "/reset")
    loaded = asyncio.run(
        run_steps(steps, factory, host="127.0.0.1", port=port, templates=templates, timeout_s=10)
    )
    assert http_probe(base, "GET", "/count")["body"]["count"] == n
    loaded_at = time.perf_counter()
    records = loaded.records
    # record keeping: every request's record checked against what was sent, the history written
    assert loaded.missing_records() is None
    ops = _history.operations(records, factory.sent, {"hit": spec})
    with (scratch / "history.jsonl").open("a", encoding="utf-8") as handle:
        for op in ops:
            handle.write(json.dumps({**op, "trial": trial}, separators=(",", ":")) + "\n")
    kept_at = time.perf_counter()
    # checking what was kept: load variables, overlap, latency summary, the history model
    load_variables(records, factory.sent, ["hit"])
    max_in_flight(records)
    summarize(records)
    verdict = check(
        [Operation.from_dict({**op, "index": i}) for i, op in enumerate(ops)], "counter"
    )
    assert verdict.valid is not False
    done = time.perf_counter()
    build_began = time.perf_counter()
    rebuilt = [replace(record) for record in records]
    built = time.perf_counter() - build_began
    assert len(rebuilt) == n
    return {
        "trial_ms": (done - began) * 1000,
        "load_ms": (loaded_at - began) * 1000,  # setup, load and probe
        "keeping_ms": (kept_at - loaded_at) * 1000,
        "checking_ms": (done - kept_at) * 1000,
        "records_ms": built * 1000,
    }


async def _gather(port: int, n: int) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=n)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()

        async def one() -> None:
            async with session.post(f"http://127.0.0.1:{port}/hit", json={"by": 1}) as response:
                await response.read()

        await asyncio.gather(*(one() for _ in range(n)))
        return (time.perf_counter() - began) * 1000


def _report(args: argparse.Namespace, heisen: list[dict[str, float]], gather: list[float]) -> None:
    def median(key: str) -> float:
        return statistics.median(trial[key] for trial in heisen)

    keeping = statistics.median((t["keeping_ms"] + t["records_ms"]) / t["trial_ms"] for t in heisen)
    checking = statistics.median(t["checking_ms"] / t["trial_ms"] for t in heisen)
    print(f"{args.trials} trials of a {args.requests}-request burst (medians, ms)")
    print(f"  heisen trial                          {median('trial_ms'):8.2f}")
    print(f"    setup, load (records kept), probe   {median('load_ms'):8.2f}")
    print(f"    records checked, history written    {median('keeping_ms'):8.2f}")
    print(f"    building the {args.requests} records            {median('records_ms'):8.3f}")
    print(f"    checking: load vars, summary, model {median('checking_ms'):8.2f}")
    print(f"  record keeping's share of the trial   {keeping * 100:7.2f}%")
    print(f"  checking's share of the trial         {checking * 100:7.2f}%")
    print(f"  peer: aiohttp gather, nothing kept    {statistics.median(gather):8.2f}")


if __name__ == "__main__":
    main()
