"""Session-wide real dependencies (PostgreSQL, Redis) and the process-leak guard."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from heisen.system import EmbeddedPostgres, EmbeddedRedis, live_processes
from support import free_port


@pytest.fixture(scope="session")
def embedded_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    root = tmp_path_factory.mktemp("postgres")
    server = EmbeddedPostgres(root / "pg", log_path=root / "postgres.log")
    try:
        server.start(timeout_s=60.0)
        yield server
    finally:
        server.stop()
        server.remove_data()


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    root = tmp_path_factory.mktemp("redis")
    server = EmbeddedRedis(root / "redis", log_path=root / "redis.log")
    try:
        server.start(timeout_s=30.0)
        yield server
    finally:
        server.stop()


@pytest.fixture
def free_tcp_port() -> int:
    return free_port()


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fail the test that leaves a ManagedProcess running (and stop what it leaked)."""
    before = {process.pid for process in live_processes()}
    yield
    leaked = [p for p in live_processes() if p.pid not in before and p.alive()]
    for process in leaked:
        process.stop(grace_s=1.0)
    if leaked:
        pytest.fail(f"test leaked processes: {leaked}", pytrace=False)


@pytest.fixture(autouse=True)
def no_leaked_signal_handlers() -> Iterator[None]:
    """Fail the test that leaves SIGINT or SIGTERM handled otherwise than it found them (and put
    back what was there): a later test's Ctrl-C would go astray."""
    watched = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.getsignal(sig) for sig in watched}
    yield
    changed = {
        sig: signal.getsignal(sig) for sig in watched if signal.getsignal(sig) != before[sig]
    }
    for sig in changed:
        signal.signal(sig, before[sig])
    if changed:
        names = ", ".join(f"{sig.name}: {handler!r}" for sig, handler in changed.items())
        pytest.fail(f"test left signal handlers changed: {names}", pytrace=False)
