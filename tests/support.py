"""What several test packages share: the command line in a subprocess, ports, bounded waits on a
condition, a small real HTTP server in a thread, and the files a test writes and reads.

Import it as `from support import ...` (tests/ is on sys.path through tests/conftest.py).

Waiting: a test that needs something to have happened waits for that condition with a deadline
(`wait_until`), never for a fixed time. The deadline only bounds how long a broken run takes to
fail; a healthy run goes on as soon as the condition holds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from heisen.system import LOOPBACK, free_port, is_listening, wait_for_port

__all__ = [
    "COUNTER",
    "LOOPBACK",
    "ROOT",
    "TESTS",
    "LoopThread",
    "copy_counter",
    "free_port",
    "heisen",
    "inherited_path",
    "is_listening",
    "manifest_of",
    "phase_of",
    "serve_app",
    "wait_for_port",
    "wait_until",
    "wait_until_async",
    "write",
]

T = TypeVar("T")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
COUNTER = TESTS / "core" / "counter"
"""The counter service and its pipeline (`MODE: buggy` loses updates, `MODE: fixed` does not)."""

PLAIN_PATH = "/usr/bin:/bin"


class LoopThread:
    """An asyncio loop running in a daemon thread; `run` waits for a coroutine on it."""

    def __init__(self, name: str = "test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def call() -> T:
            return fn(*args)

        return self.run(call())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


# ------------------------------------------------------------------ the command line


def heisen(
    *args: str,
    timeout: float = 180,
    columns: int = 120,
    env: Mapping[str, str] | None = None,
    path: str = PLAIN_PATH,
) -> subprocess.CompletedProcess[str]:
    """`python -m heisen ARGS` in a subprocess with a plain, fixed-width terminal.

    The environment is only NO_COLOR=1, COLUMNS, PATH (`/usr/bin:/bin` unless `path` says
    otherwise) and `env`: nothing from the test's own environment leaks into the run.
    """
    return subprocess.run(
        [sys.executable, "-m", "heisen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"NO_COLOR": "1", "COLUMNS": str(columns), "PATH": path, **(env or {})},
    )


def inherited_path() -> str:
    """The test's own PATH, for runs that need tools found there (cgroup helpers, kubectl)."""
    return os.environ.get("PATH", PLAIN_PATH)


# ------------------------------------------------------------------ waiting on a condition


def wait_until(
    condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `condition` until it returns something true and return that; fail the test (an
    AssertionError naming `what`) when `timeout` seconds pass first. `condition` is always
    called at least once, and once more at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or repr(condition)}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float = 5.0,
    interval: float = 0.01,
    what: str = "",
) -> T:
    """`wait_until` inside an event loop: the loop keeps running while it waits. `condition`
    may be a plain function or return an awaitable."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or repr(condition)}")
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


# ------------------------------------------------------------------ a real HTTP server


@contextmanager
def serve_app(
    make_app: Callable[[], Any], start_timeout: float = 10.0, ssl_context: Any = None
) -> Iterator[str]:
    """Run an aiohttp application (`make_app()` builds it, inside the server's loop) on
    127.0.0.1 at an ephemeral port, in its own thread and event loop; yield its base URL
    (`http://127.0.0.1:PORT`, or `https://` with `ssl_context`); always stop it."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=ssl_context)
        await site.start()
        box["runner"] = runner
        host, port = runner.addresses[0][:2]
        box["url"] = f"{'https' if ssl_context else 'http'}://{host}:{port}"

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # reported to the test below
            box["error"] = exc
        ready.set()
        if "error" not in box:
            loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(start_timeout), f"the test server did not start within {start_timeout} s"
        if "error" in box:
            raise RuntimeError("the test server failed to start") from box["error"]
        yield str(box["url"])
    finally:
        runner = box.get("runner")
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# ------------------------------------------------------------------ files


def write(directory: Path, text: str, name: str = "pipeline.yaml") -> Path:
    """Write `text` to `directory/name` (creating the directory) and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def copy_counter(directory: Path) -> Path:
    """A private copy of the counter service and pipeline at `directory`; returns `directory`."""
    shutil.copytree(COUNTER, directory)
    return directory


def manifest_of(run_dir: Path) -> dict[str, Any]:
    """The run's manifest.yaml, parsed."""
    manifest: dict[str, Any] = yaml.safe_load((run_dir / "manifest.yaml").read_text())
    return manifest


def phase_of(run_dir: Path, phase: str) -> dict[str, Any]:
    """One phase's section of the run's manifest."""
    section: dict[str, Any] = manifest_of(run_dir)["phases"][phase]
    return section


@contextmanager
def started_system(pipeline: Path, work: Path, run_id: str, seed: int = 7) -> Iterator[Any]:
    """The system `pipeline` describes, started on this machine (a SystemHandle); stopped after."""
    from heisen.pipeline import load_pipeline
    from heisen.system import SystemHandle

    system = SystemHandle(load_pipeline(pipeline), work, seed=seed, run_id=run_id)
    try:
        system.start()
        yield system
    finally:
        system.stop()
