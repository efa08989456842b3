"""The ``rate`` history model: certain violations only, per key and replica, fast on 100k calls,
and a real HTTP rate limiter (racy and correct) caught or passed by ``heisen verify``."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, TCPConnector, web
from typer.testing import CliRunner

import heisen.cli._commands  # noqa: F401  (registers the commands)
from heisen.cli import app
from heisen.errors import HeisenError, UsageError
from heisen.oracle.checkers import CheckResult, Per, RateLimit, check, render_timeline
from heisen.oracle.history import HistoryError, Operation, OpType, pair_calls, read_history
from support import wait_until_async

MS = 1_000_000  # ns


@dataclass(frozen=True)
class C:
    """One call: invoked at ``start``, completed (``kind``) at ``end``; None: never completed."""

    start: int
    end: int | None
    kind: str = "ok"
    key: str | None = None
    replica: str | int | None = None
    f: str = "acquire"


def history(*calls: C) -> list[Operation]:
    """The operations of ``calls``, one process each, in time order (invokes first on ties)."""
    events: list[tuple[int, int, Operation]] = []
    for process, call in enumerate(calls):
        invoke = Operation(process, OpType.INVOKE, call.f, None, call.start, call.key)
        events.append((call.start, 0, invoke))
        if call.end is not None:
            done = Operation(
                process, OpType(call.kind), call.f, None, call.end, call.key, 0, call.replica
            )
            events.append((call.end, 1, done))
    events.sort(key=lambda event: (event[0], event[1]))
    return [
        Operation(o.process, o.type, o.f, o.value, o.time, o.key, number, o.replica)
        for number, (_, _, o) in enumerate(events)
    ]


def rate(limit: int, window_ms: float, **options: Any) -> RateLimit:
    return RateLimit(limit=limit, window_s=window_ms / 1000, **options)


def ok_calls(result: CheckResult, number: int = 0) -> list[Operation]:
    ops = result.violations[number].operations
    return [op for op in ops if op.type is OpType.OK]


# ------------------------------------------------------------------ holds / violates


def test_limit_respected_in_every_window_holds() -> None:
    # 3 per 100 ms, one call every 40 ms: any 100 ms window holds at most 3.
    calls = [C(40 * MS * i, 40 * MS * i + 5 * MS) for i in range(30)]
    result = check(history(*calls), rate(3, 100))
    assert result.valid is True and result.violations == ()
    assert result.model.value == "rate" and result.stats.operations == 30


def test_one_too_many_in_a_window_is_a_certain_violation_with_a_minimal_witness() -> None:
    calls = [C(i * MS, i * MS + 2 * MS) for i in range(6)]  # 6 calls within 7 ms
    result = check(history(*calls), rate(5, 1000))
    assert result.valid is False
    (violation,) = result.violations
    assert violation.kind == "rate-exceeded" and violation.minimal
    assert len(ok_calls(result)) == 6  # limit + 1: drop any one and the limit holds
    assert "6 ok acquire fit one 1 s window (limit 5)" in violation.message
    assert "within 7 ms" in violation.message and "info" not in violation.message
    assert check(history(*calls[:5]), rate(5, 1000)).valid is True


def test_the_witness_is_the_smallest_set_even_in_a_large_burst() -> None:
    calls = [C(i * MS, i * MS + 3 * MS) for i in range(40)]
    result = check(history(*calls), rate(5, 1000))
    (violation,) = result.violations
    assert violation.message.startswith("40 ok acquire")
    assert len(ok_calls(result)) == 6
    witness = pair_calls(violation.operations)
    assert max(c.returned or 0 for c in witness) - min(c.called for c in witness) < 1000 * MS
    timeline = render_timeline(violation.operations)
    assert timeline.count("acquire (ok") == 6


def test_separate_bursts_are_separate_findings() -> None:
    burst = [C(i * MS, i * MS + MS) for i in range(4)]
    later = [C(5000 * MS + i * MS, 5000 * MS + i * MS + MS) for i in range(4)]
    result = check(history(*burst, *later), rate(3, 1000))
    assert len(result.violations) == 2
    assert all(len(ok_calls(result, n)) == 4 for n in range(2))


def test_ranges_ending_and_starting_at_one_instant_do_not_split_a_finding() -> None:
    # At the instant the first call stops fitting, another starts to: the depth stays 3 > 2.
    window = 100 * MS
    calls = [
        C(0, 10),  # fits windows starting in [10 - W + 1, 0]
        C(0, 20),
        C(1, 30),
        C(1, window),  # fits windows starting at exactly 1
    ]
    result = check(history(*calls), RateLimit(limit=2, window_s=0.1))
    assert len(result.violations) == 1


# ------------------------------------------------------------------ borderline: no false alarm


def test_intervals_that_may_straddle_the_window_edge_are_not_a_violation() -> None:
    # limit 1 per 100 ms: A could have taken effect at 0 and B at 120 ms, 120 ms apart.
    a, b = C(0, 150 * MS), C(120 * MS, 130 * MS)
    assert check(history(a, b), rate(1, 100)).valid is True
    # Once both must lie within 100 ms (invoke 0, last completion 99 ms), it is certain.
    assert check(history(C(0, 50 * MS), C(60 * MS, 99 * MS)), rate(1, 100)).valid is False


def test_a_span_of_exactly_the_window_is_not_certain() -> None:
    window = 100 * MS
    # Effect points 0 and W: no half-open window of length W holds both.
    assert check(history(C(0, 1), C(window - 1, window)), rate(1, 100)).valid is True
    assert check(history(C(0, 1), C(window - 2, window - 1)), rate(1, 100)).valid is False


def test_slow_responses_never_count_however_many_overlap() -> None:
    # 20 ok calls in flight together, each taking longer than the window: any could have
    # been admitted at a different instant, 200 ms apart; a correct limiter is never flagged.
    calls = [C(i * 10 * MS, i * 10 * MS + 200 * MS * 20) for i in range(20)]
    assert check(history(*calls), rate(1, 100)).valid is True


# ------------------------------------------------------------------ info and fail


def test_info_and_fail_never_count_but_info_is_reported_in_the_window() -> None:
    admitted = [C(i * MS, i * MS + MS) for i in range(3)]
    rejected = [C(i * MS, i * MS + MS, "fail") for i in range(10)]
    unknown = [C(2 * MS, None), C(3 * MS, 4 * MS, "info"), C(2000 * MS, None)]
    assert check(history(*admitted, *rejected, *unknown), rate(3, 1000)).valid is True
    over = [*admitted, C(3 * MS, 5 * MS)]
    result = check(history(*over, *rejected, *unknown), rate(3, 1000))
    assert result.valid is False
    message = result.violations[0].message
    # the two info invoked before the window ended, not the one invoked 2 s later
    assert "2 info acquire (outcome unknown)" in message
    assert len(ok_calls(result)) == 4


# ------------------------------------------------------------------ keys and replicas


def test_each_key_has_its_own_limit() -> None:
    calls = [C(i * MS, i * MS + MS, key=k) for i in range(3) for k in ("alice", "bob")]
    assert check(history(*calls), rate(3, 1000)).valid is True
    more = [*calls, C(9 * MS, 10 * MS, key="bob")]
    result = check(history(*more), rate(3, 1000))
    assert [v.key for v in result.violations] == ["bob"]
    assert result.stats.keys == 2


def test_per_replica_holds_each_replica_to_the_limit() -> None:
    calls = [C(i * MS, i * MS + MS, replica="r1" if i % 2 else "r2") for i in range(8)]
    assert check(history(*calls), rate(4, 1000, per=Per.REPLICA)).valid is True
    assert check(history(*calls), rate(4, 1000)).valid is False  # 8 for the key
    crowded = [*calls, C(20 * MS, 21 * MS, replica="r1")]
    result = check(history(*crowded), rate(4, 1000, per=Per.REPLICA))
    (violation,) = result.violations
    assert "on replica r1" in violation.message
    assert {op.replica for op in violation.operations if op.type is OpType.OK} == {"r1"}


def test_per_replica_without_replicas_is_an_error_not_a_pass() -> None:
    calls = [C(i * MS, i * MS + MS) for i in range(2)]
    with pytest.raises(UsageError, match="no 'acquire' operation carries a replica"):
        check(history(*calls), rate(4, 1000, per=Per.REPLICA))
    partly = [*[C(i * MS, i * MS + MS, replica=1) for i in range(2)], C(5 * MS, 6 * MS)]
    with pytest.raises(HistoryError, match="has no replica field") as caught:
        check(history(*partly), rate(4, 1000, per=Per.REPLICA))
    assert caught.value.line == 6


def test_replica_survives_the_history_file(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    ops = history(*[C(i * MS, i * MS + MS, replica=i % 2) for i in range(4)])
    path.write_text("".join(json.dumps(op.to_dict()) + "\n" for op in ops))
    back = read_history(path)
    assert [op.replica for op in back] == [op.replica for op in ops]
    assert check(back, rate(1, 1000, per=Per.REPLICA)).valid is False
    path.write_text('{"process": 1, "type": "invoke", "f": "x", "time": 1, "replica": [1]}\n')
    with pytest.raises(HistoryError, match="'replica' must be a string or an integer"):
        read_history(path)


# ------------------------------------------------------------------ parameters


def test_which_operations_count() -> None:
    mixed = [C(i * MS, i * MS + MS, f="acquire" if i < 3 else "read") for i in range(6)]
    assert check(history(*mixed), rate(2, 1000, f="acquire")).valid is False
    assert check(history(*mixed), rate(3, 1000, f="acquire")).valid is True
    with pytest.raises(UsageError, match="holds operations acquire, read"):
        check(history(*mixed), rate(3, 1000))
    with pytest.raises(UsageError, match="Did you mean 'acquire'"):
        check(history(*mixed), rate(3, 1000, f="acquir"))
    with pytest.raises(UsageError, match="needs its parameters"):
        check(history(*mixed), "rate")
    assert check([], rate(3, 1000)).valid is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0, "window_s": 1.0}, "limit must be an integer >= 1"),
        ({"limit": True, "window_s": 1.0}, "limit must be an integer"),
        ({"limit": 2, "window_s": 0.0}, "window must be more than 0"),
        ({"limit": 2, "window_s": "1s"}, "window must be a duration"),
        ({"limit": 2, "window_s": 1.0, "per": "pod"}, "per takes key or replica"),
        ({"limit": 2, "window_s": 1.0, "f": ""}, "f must be a non-empty string"),
    ],
)
def test_bad_parameters_are_usage_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RateLimit(**options)


def test_describe() -> None:
    assert rate(5, 1000, f="redeem", per=Per.REPLICA).describe() == (
        "at most 5 redeem per key and replica in any 1 s"
    )


# ------------------------------------------------------------------ against brute force


def _most_certain_in_a_window(calls: Sequence[C], window: int) -> int:
    """Largest set of ok calls with max(end) - min(start) < window, by trying every subset."""
    oks = [c for c in calls if c.kind == "ok" and c.end is not None]
    best = 0
    for size in range(1, len(oks) + 1):
        for subset in combinations(oks, size):
            if max(c.end or 0 for c in subset) - min(c.start for c in subset) < window:
                best = size
                break
    return best


def test_agrees_with_brute_force_on_random_histories() -> None:
    rng = random.Random(14)
    window = 100
    violated = 0
    for _ in range(300):
        calls = []
        for _ in range(rng.randint(1, 8)):
            start = rng.randint(0, 300)
            calls.append(
                C(start, start + rng.randint(0, 150), rng.choice(["ok", "ok", "ok", "fail"]))
            )
        limit = rng.randint(1, 4)
        expected = _most_certain_in_a_window(calls, window) > limit
        violated += expected
        result = check(history(*calls), RateLimit(limit=limit, window_s=window / 1e9))
        assert (result.valid is False) == expected, (calls, limit)
        for violation in result.violations:
            witness = pair_calls(violation.operations)
            assert len(witness) == limit + 1
            ends = max(c.returned or 0 for c in witness)
            assert ends - min(c.called for c in witness) < window
    assert 20 < violated < 280  # both verdicts were exercised


# ------------------------------------------------------------------ scale


def _steady(calls: int, gap_ns: int, keys: int) -> list[Operation]:
    """``calls`` calls, one every ``gap_ns``, each taking 2 ms, spread over ``keys`` keys."""
    ops: list[Operation] = []
    for number in range(calls):
        start = number * gap_ns
        key = f"k{number % keys}"
        ops.append(Operation(number, OpType.INVOKE, "acquire", None, start, key, 2 * number))
        ops.append(
            Operation(number, OpType.OK, "acquire", None, start + 2 * MS, key, 2 * number + 1)
        )
    return ops


def test_100k_calls_are_checked_well_within_the_budget() -> None:
    # 100,000 operations (50,000 calls), 4 keys, one call every 1 ms: 250 per second per key.
    # CPU time, not wall time: the assertion must not depend on what else the machine runs.
    ops = _steady(50_000, MS, 4)
    started = time.process_time()
    holds = check(ops, rate(251, 1000), time_budget_s=5.0)
    held_in = time.process_time() - started
    assert holds.valid is True and holds.stats.operations == 50_000
    started = time.process_time()
    broken = check(ops, rate(200, 1000), time_budget_s=5.0)
    broken_in = time.process_time() - started
    assert broken.valid is False and len(broken.violations) == 4
    assert all(len(ok_calls(broken, n)) == 201 for n in range(4))
    assert held_in < 2.0 and broken_in < 2.0, (held_in, broken_in)


def test_an_exhausted_budget_is_unknown_not_valid() -> None:
    ops = _steady(2_000, MS, 4)
    result = check(ops, rate(1000, 1000), time_budget_s=0.0)
    assert result.valid is None and len(result.unknown_keys) == 4
    assert check(ops, rate(1, 1000), max_steps=600).valid is False  # a finding before it ran out


# ------------------------------------------------------------------ CLI (in process)


def _write(path: Path, ops: Sequence[Operation]) -> Path:
    path.write_text("".join(json.dumps(op.to_dict()) + "\n" for op in ops))
    return path


def _exit_code(arguments: list[str]) -> int:
    """The exit code ``heisen`` gives ``arguments``, run in process."""
    result = CliRunner().invoke(app, arguments)
    if isinstance(result.exception, HeisenError):
        return result.exception.exit_code
    return result.exit_code


def test_verify_options(tmp_path: Path) -> None:
    calls = [C(i * MS, i * MS + MS, replica=i % 2) for i in range(6)]
    path = _write(tmp_path / "h.jsonl", history(*calls))
    base = ["verify", str(path), "--model", "rate"]
    broken = CliRunner().invoke(app, [*base, "--limit", "5", "--window", "1s", "--json"])
    assert broken.exit_code == 1, broken.output
    document = json.loads(broken.stdout)
    assert document["model"] == "rate" and document["violations"][0]["kind"] == "rate-exceeded"
    assert _exit_code([*base, "--limit", "3", "--window", "1s", "--per", "replica"]) == 0
    assert _exit_code([*base, "--limit", "2", "--window", "1s", "--per", "replica"]) == 1
    assert _exit_code([*base, "--limit", "6", "--window", "1s", "--f", "acquire"]) == 0
    assert _exit_code([*base, "--limit", "5", "--window", "3ms"]) == 0
    for wrong in (
        [*base, "--limit", "5"],
        [*base, "--limit", "5", "--window", "soon"],
        [*base, "--limit", "0", "--window", "1s"],
        [*base, "--limit", "5", "--window", "1s", "--per", "pod"],
        [*base, "--limit", "5", "--window", "1s", "--f", "read"],
        ["verify", str(path), "--model", "counter", "--limit", "5"],
        ["verify", str(path), "--model", "counter", "--per", "replica"],
    ):
        assert _exit_code(wrong) == 2, wrong


# ------------------------------------------------------------------ a real rate limiter


class Limiter:
    """A sliding-window-log limiter per key. ``racy``: it reads the log, awaits (a store's
    round trip), then writes: check-then-act across an await, so a burst all sees room."""

    def __init__(self, limit: int, window_s: float, *, racy: bool, replica: str) -> None:
        self.limit, self.window_ns, self.racy, self.replica = (
            limit,
            int(window_s * 1e9),
            racy,
            replica,
        )
        self.log: dict[str, deque[int]] = {}
        self.lock = asyncio.Lock()
        self.admitted = 0

    async def _admit(self, key: str) -> bool:
        log = self.log.setdefault(key, deque())
        now = time.monotonic_ns()
        while log and log[0] <= now - self.window_ns:
            log.popleft()
        room = len(log) < self.limit
        if self.racy:
            await asyncio.sleep(0.05)
        if room:
            log.append(time.monotonic_ns())
        return room

    async def handle(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if self.racy:
            admitted = await self._admit(key)
        else:
            async with self.lock:
                admitted = await self._admit(key)
        self.admitted += admitted
        return web.json_response(
            {"admitted": admitted},
            status=200 if admitted else 429,
            headers={"X-Replica": self.replica},
        )


@pytest.fixture
def limiters() -> Iterator[dict[str, tuple[Limiter, str]]]:
    """Four limiters (5 per 1 s) on 127.0.0.1, served by one event loop in a thread."""
    loop = asyncio.new_event_loop()
    made = {
        "racy": Limiter(5, 1.0, racy=True, replica="racy"),
        "correct": Limiter(5, 1.0, racy=False, replica="correct"),
        "a": Limiter(5, 1.0, racy=False, replica="a"),
        "b": Limiter(5, 1.0, racy=False, replica="b"),
    }
    runners: list[web.AppRunner] = []
    urls: dict[str, str] = {}
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        for name, limiter in made.items():
            application = web.Application()
            application.router.add_post("/acquire", limiter.handle)
            runner = web.AppRunner(application)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            urls[name] = f"http://127.0.0.1:{port}/acquire"
            runners.append(runner)
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "the limiters did not start"
    try:
        yield {name: (made[name], urls[name]) for name in made}
    finally:
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _burst(targets: Sequence[str], requests: int, key: str) -> list[dict[str, Any]]:
    """Send ``requests`` POSTs at once, round-robin over ``targets``; their history operations."""
    ops: list[dict[str, Any]] = []
    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        gate = asyncio.Event()
        parked: list[int] = []

        async def one(process: int) -> None:
            url = targets[process % len(targets)]
            parked.append(process)
            await gate.wait()
            ops.append(
                {
                    "process": process,
                    "type": "invoke",
                    "f": "acquire",
                    "key": key,
                    "time": time.monotonic_ns(),
                }
            )
            try:
                async with session.post(url, params={"key": key}, timeout=None) as response:
                    await response.read()
                    status, replica = response.status, response.headers.get("X-Replica")
            except OSError:
                kind, replica = "info", None
            else:
                kind = "ok" if status == 200 else "fail" if 400 <= status < 500 else "info"
            done = {
                "process": process,
                "type": kind,
                "f": "acquire",
                "key": key,
                "time": time.monotonic_ns(),
            }
            ops.append({**done, **({"replica": replica} if replica else {})})

        tasks = [asyncio.create_task(one(process)) for process in range(requests)]
        await wait_until_async(lambda: len(parked) == requests, what="every request at the gate")
        gate.set()
        await asyncio.gather(*tasks)
    return ops


def _verify(
    ops: Sequence[dict[str, Any]], path: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    command = [sys.executable, "-m", "heisen", "verify", str(path), "--model", "rate", *options]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "100"},
    )


def test_verify_catches_a_racy_limiter_and_passes_a_correct_one(
    limiters: dict[str, tuple[Limiter, str]], tmp_path: Path
) -> None:
    racy, racy_url = limiters["racy"]
    ops = asyncio.run(_burst([racy_url], 20, "user:1"))
    assert racy.admitted > 5  # the race happened at the server
    found = _verify(ops, tmp_path / "racy.jsonl", "--limit", "5", "--window", "1s")
    assert found.returncode == 1, found.stdout + found.stderr
    assert "rate-exceeded key=user:1" in found.stdout
    assert re.search(r"\d+ ok acquire fit one 1 s window \(limit 5\)", found.stdout)

    correct, correct_url = limiters["correct"]
    ops = asyncio.run(_burst([correct_url], 20, "user:1"))
    assert correct.admitted >= 5  # 5 unless the burst outlasted the window on a loaded machine
    assert sum(op["type"] == "fail" for op in ops) == 20 - correct.admitted
    held = _verify(ops, tmp_path / "correct.jsonl", "--limit", "5", "--window", "1s")
    assert held.returncode == 0, held.stdout + held.stderr


def test_two_correct_replicas_hold_per_replica_but_not_per_key(
    limiters: dict[str, tuple[Limiter, str]], tmp_path: Path
) -> None:
    (a, a_url), (b, b_url) = limiters["a"], limiters["b"]
    ops = asyncio.run(_burst([a_url, b_url], 20, "user:2"))
    assert a.admitted >= 5 and b.admitted >= 5
    path = tmp_path / "replicas.jsonl"
    per_replica = _verify(ops, path, "--limit", "5", "--window", "1s", "--per", "replica")
    assert per_replica.returncode == 0, per_replica.stdout + per_replica.stderr
    per_key = _verify(ops, path, "--limit", "5", "--window", "1s")
    assert per_key.returncode == 1, per_key.stdout + per_key.stderr
    assert re.search(r"\d+ ok acquire fit one 1 s window \(limit 5\)", per_key.stdout)
