"""Each planted race of the observe-mode services is real, and each correct twin holds.

Every test starts the service (and for orders its payments dependency) as real processes on
the session's embedded PostgreSQL and Redis, with its own database and keys, sends concurrent
requests, then reads what was stored. The buggy form must show its anomaly; the correct form
must not, under the same concurrency (each test also checks the requests really overlapped,
so a correct twin cannot pass by having run them one at a time).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from heisen.system import EmbeddedPostgres, EmbeddedRedis, ManagedProcess, spawn
from support import LOOPBACK, free_port, wait_until

HERE = Path(__file__).resolve().parent
MODES = ["buggy", "correct"]

Start = Callable[[str, dict[str, str]], str]


def _healthy(process: ManagedProcess, url: str) -> bool:
    if not process.alive():
        raise AssertionError(f"{process.name} exited at start:\n{process.tail(30)}")
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start `python <script>` with `env`; wait until healthy; return its URL. All stop after."""
    started: list[ManagedProcess] = []

    def start_service(script: str, env: dict[str, str]) -> str:
        port = free_port()
        process = spawn(
            script,
            [sys.executable, str(HERE / script)],
            log_path=tmp_path / f"{script}.log",
            env={**env, "PORT": str(port), "HOST": LOOPBACK},
            cwd=HERE,
        )
        started.append(process)
        url = f"http://{LOOPBACK}:{port}"
        wait_until(lambda: _healthy(process, url), timeout=20, what=f"{script} healthy")
        return url

    try:
        yield start_service
    finally:
        for process in started:
            process.stop(grace_s=3)


def _database(postgres: EmbeddedPostgres, name: str) -> str:
    return postgres.create_database(name)


def _redis_url(redis: EmbeddedRedis) -> str:
    return f"redis://{LOOPBACK}:{redis.port}/0"


async def _send(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any, float, float]:
    """One request: (status, JSON body, start, end) on the monotonic clock."""
    began = time.monotonic()
    async with session.request(method, url, json=body) as response:
        payload = await response.json()
        return response.status, payload, began, time.monotonic()


async def _get(url: str) -> Any:
    async with aiohttp.ClientSession() as session:
        return (await _send(session, "GET", url))[1]


@pytest.mark.parametrize("mode", MODES)
def test_counter_increments(mode: str, start: Start, embedded_redis: EmbeddedRedis) -> None:
    url = start(
        "counter_service.py",
        {"MODE": mode, "REDIS_URL": _redis_url(embedded_redis), "WINDOW_MS": "5"},
    )
    counter = f"{url}/counters/observe-{mode}-{time.monotonic_ns()}"

    async def scenario() -> int:
        async with aiohttp.ClientSession() as session:
            sent = [_send(session, "POST", f"{counter}/increment") for _ in range(40)]
            assert all(status == 200 for status, *_ in await asyncio.gather(*sent))
        return int((await _get(counter))["value"])

    value = asyncio.run(scenario())
    if mode == "buggy":
        assert value < 40, "40 concurrent GET-then-SET increments lost none"
    else:
        assert value == 40


@pytest.mark.parametrize("mode", MODES)
def test_signup_duplicates(mode: str, start: Start, embedded_postgres: EmbeddedPostgres) -> None:
    dsn = _database(embedded_postgres, f"observe_signup_{mode}")
    url = start("signup_service.py", {"MODE": mode, "DATABASE_URL": dsn, "WINDOW_MS": "20"})
    email = f"ann-{time.monotonic_ns()}@example.com"

    async def scenario() -> tuple[list[Any], int]:
        async with aiohttp.ClientSession() as session:
            sent = [_send(session, "POST", f"{url}/users", {"email": email}) for _ in range(30)]
            answers = [body for _, body, *_ in await asyncio.gather(*sent)]
        return answers, int((await _get(f"{url}/users?email={email}"))["count"])

    answers, stored = asyncio.run(scenario())
    created = [answer for answer in answers if answer["created"]]
    if mode == "buggy":
        assert stored > 1, "30 concurrent sign-ups of one email stored it once"
        assert len(created) == stored
    else:
        assert stored == 1 and len(created) == 1
        # some requests passed the SELECT before the insert and met the conflict
        assert any("id" not in answer for answer in answers)


@pytest.mark.parametrize("mode", MODES)
def test_catalog_cache_after_update(
    mode: str,
    start: Start,
    embedded_postgres: EmbeddedPostgres,
    embedded_redis: EmbeddedRedis,
) -> None:
    dsn = _database(embedded_postgres, f"observe_catalog_{mode}")
    env = {"MODE": mode, "DATABASE_URL": dsn, "REDIS_URL": _redis_url(embedded_redis)}
    url = start("catalog_service.py", {**env, "WINDOW_MS": "100"})
    product = f"p-{mode}-{time.monotonic_ns()}"
    embedded_postgres.execute(
        f"INSERT INTO products (id, price) VALUES ('{product}', 100)",
        database=dsn.rsplit("/", 1)[1],
    )

    async def scenario() -> tuple[list[Any], Any]:
        async with aiohttp.ClientSession() as session:
            # open the service's connections first, so every reader's SELECT comes at once
            await asyncio.gather(
                *(_send(session, "GET", f"{url}/products/none") for _ in range(20))
            )
            readers = [_send(session, "GET", f"{url}/products/{product}") for _ in range(20)]
            reading = asyncio.gather(*readers)
            await asyncio.sleep(0.03)  # the readers have read the row and are in their window
            status, *_ = await _send(session, "PUT", f"{url}/products/{product}", {"price": 200})
            assert status == 200
            read = [body["price"] for _, body, *_ in await reading]
        return read, await _get(f"{url}/products/{product}/consistency")

    read, state = asyncio.run(scenario())
    assert 100 in read, "no reader read the row before the update: nothing overlapped"
    assert state["stored"] == 200
    if mode == "buggy":  # a later reader may have cached the new price over it since
        assert state["stale_sets"] >= 1, "no reader put the old price back after the DEL"
    else:
        assert state["cached"] == 200


@pytest.mark.parametrize("mode", MODES)
def test_jobs_lease(
    mode: str,
    start: Start,
    embedded_postgres: EmbeddedPostgres,
    embedded_redis: EmbeddedRedis,
) -> None:
    dsn = _database(embedded_postgres, f"observe_jobs_{mode}")
    env = {"MODE": mode, "DATABASE_URL": dsn, "REDIS_URL": _redis_url(embedded_redis)}
    # a lease shorter than the work: each holder's lease runs out while it still works
    url = start("jobs_service.py", {**env, "LEASE_MS": "40", "WORK_MS": "60-90"})
    job = f"job-{mode}-{time.monotonic_ns()}"
    embedded_postgres.execute(
        f"INSERT INTO jobs (name) VALUES ('{job}')", database=dsn.rsplit("/", 1)[1]
    )

    async def scenario() -> tuple[list[tuple[int, Any, float, float]], int]:
        async with aiohttp.ClientSession() as session:

            async def later(delay: float) -> tuple[int, Any, float, float]:
                await asyncio.sleep(delay)
                return await _send(session, "POST", f"{url}/jobs/{job}/run")

            answers = await asyncio.gather(*(later(0.02 * i) for i in range(30)))
        return list(answers), int((await _get(f"{url}/jobs/{job}"))["runs"])

    answers, runs = asyncio.run(scenario())
    ran = sorted((began, ended) for status, _, began, ended in answers if status == 200)
    held = sorted(
        (began, ended) for _, body, began, ended in answers if body.get("why") != "locked"
    )
    overlaps = sum(1 for (_, end), (begin, _) in itertools.pairwise(held) if begin < end)
    assert overlaps > 0, "no two holders of the lease ever worked at the same time"
    if mode == "buggy":
        assert runs < len(ran), f"{len(ran)} acknowledged runs, {runs} recorded: none lost"
    else:
        assert runs == len(ran)


@pytest.mark.parametrize("mode", MODES)
def test_orders_charge_once(mode: str, start: Start) -> None:
    payments = start("payments_dependency.py", {})
    url = start("orders_service.py", {"MODE": mode, "PAYMENTS_URL": payments})

    async def scenario() -> tuple[list[Any], Any]:
        async with aiohttp.ClientSession() as session:
            sent = [_send(session, "POST", f"{url}/orders", {"amount": 5}) for _ in range(20)]
            answers = [body for _, body, *_ in await asyncio.gather(*sent)]
        return answers, await _get(f"{url}/charges")

    answers, charged = asyncio.run(scenario())
    assert any(answer.get("attempts", 0) > 1 for answer in answers), "no order was retried"
    assert charged["orders"] == len(answers)
    if mode == "buggy":
        assert charged["charges"] > charged["orders"], "no order was charged twice"
    else:
        assert charged["charges"] == charged["orders"]
