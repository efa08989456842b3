"""The ticketing case study as real processes: 3 inventory replicas and a payments service.

Each mode (buggy, fixed) gets its own PostgreSQL database and Redis logical
database on the session's embedded servers, so tests of the two modes never
share state.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heisen.system._postgres import EmbeddedPostgres
from heisen.system._process import ManagedProcess, spawn
from heisen.system._redis import EmbeddedRedis
from support import LOOPBACK, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ticketing"
REPLICAS = 3
_REDIS_DB = {"buggy": 1, "fixed": 2}


@dataclass(frozen=True, slots=True)
class Ticketing:
    """A running ticketing deployment: where its replicas listen and what they share."""

    mode: str
    urls: tuple[str, ...]
    dsn: str
    redis_url: str
    payments_url: str


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start(
    name: str, script: str, env: dict[str, str], log_dir: Path
) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = spawn(
        name,
        [sys.executable, str(EXAMPLE / script)],
        log_path=log_dir / f"{name}.log",
        env={**env, "PORT": str(port), "HOST": LOOPBACK},
    )
    return process, f"http://{LOOPBACK}:{port}"


def _wait_healthy(started: list[tuple[ManagedProcess, str]], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    pending = list(started)
    while pending and time.monotonic() < deadline:
        for process, url in list(pending):
            if not process.alive():
                raise RuntimeError(f"{process.name} exited at start:\n{process.tail(30)}")
            if _healthy(url):
                pending.remove((process, url))
        time.sleep(0.05)
    if pending:
        names = ", ".join(process.name for process, _ in pending)
        raise RuntimeError(f"not healthy within {deadline_s}s: {names}\n{pending[0][0].tail(30)}")


@pytest.fixture(scope="session")
def payments_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_dir = tmp_path_factory.mktemp("payments")
    process, url = _start("payments", "payments_service.py", {"SEED": "7"}, log_dir)
    try:
        _wait_healthy([(process, url)], 30)
        yield url
    finally:
        process.stop()


def _deploy(
    mode: str,
    postgres: EmbeddedPostgres,
    redis: EmbeddedRedis,
    payments: str,
    log_dir: Path,
) -> Iterator[Ticketing]:
    dsn = postgres.create_database(f"ticketing_{mode}")
    redis_url = f"redis://{LOOPBACK}:{redis.port}/{_REDIS_DB[mode]}"
    env = {
        "MODE": mode,
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "PAYMENTS_URL": payments,
        "DB_POOL_SIZE": "10",
    }
    started: list[tuple[ManagedProcess, str]] = []
    try:
        for index in range(REPLICAS):
            started.append(
                _start(f"inventory-{mode}-{index}", "inventory_service.py", env, log_dir)
            )
        _wait_healthy(started, 60)
        urls = tuple(url for _, url in started)
        yield Ticketing(mode, urls, dsn, redis_url, payments)
    finally:
        for process, _ in started:  # all at once: each drains its connections
            process.signal(signal.SIGTERM)
        for process, _ in started:
            process.stop()


@pytest.fixture(scope="session")
def buggy_ticketing(
    embedded_postgres: EmbeddedPostgres,
    embedded_redis: EmbeddedRedis,
    payments_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Ticketing]:
    log_dir = tmp_path_factory.mktemp("ticketing-buggy")
    yield from _deploy("buggy", embedded_postgres, embedded_redis, payments_url, log_dir)


@pytest.fixture(scope="session")
def fixed_ticketing(
    embedded_postgres: EmbeddedPostgres,
    embedded_redis: EmbeddedRedis,
    payments_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Ticketing]:
    log_dir = tmp_path_factory.mktemp("ticketing-fixed")
    yield from _deploy("fixed", embedded_postgres, embedded_redis, payments_url, log_dir)


@pytest.fixture
def post_json() -> Callable[[str, dict[str, object]], dict[str, object]]:
    """A plain blocking POST for set-up calls (reset), not for load."""

    def post(url: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, object] = json.loads(response.read())
            return result

    return post
