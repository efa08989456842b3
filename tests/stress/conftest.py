"""Session servers for the stress engine tests: real processes on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heisen.system._process import ManagedProcess, spawn
from support import free_port, wait_for_port

SERVERS = Path(__file__).with_name("_servers.py")


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int
    process: ManagedProcess


def start_server(kind: str, log_dir: Path) -> Server:
    port = free_port()
    process = spawn(
        f"{kind}-server",
        [sys.executable, str(SERVERS), kind, str(port)],
        log_path=log_dir / f"{kind}.log",
    )
    if not wait_for_port("127.0.0.1", port, deadline_s=20):
        process.stop()
        raise RuntimeError(f"{kind} server did not start:\n{process.tail()}")
    return Server("127.0.0.1", port, process)


def _serve(kind: str, factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(kind, factory.mktemp(kind))
    try:
        yield server
    finally:
        server.process.stop(grace_s=2)


@pytest.fixture(scope="session")
def raw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve("raw", tmp_path_factory)


@pytest.fixture(scope="session")
def aiohttp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve("aiohttp", tmp_path_factory)


@pytest.fixture(scope="session")
def h2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve("h2", tmp_path_factory)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[[str], Server]]:
    """Start a private server (e.g. to kill it mid-run); stopped at the end of the test."""
    started: list[Server] = []

    def start(kind: str) -> Server:
        server = start_server(kind, tmp_path)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.process.stop(grace_s=2)


@pytest.fixture
def no_leaked_sockets() -> Iterator[None]:
    """Fail the test if it leaves more sockets open in this process than it found."""
    before = open_sockets()
    yield
    after = open_sockets()
    assert after <= before, f"{after - before} socket(s) left open"


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count
