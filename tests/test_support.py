"""The shared test helpers do what the tests rely on: a wait fails when its condition never holds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web

from support import heisen, manifest_of, serve_app, wait_until, wait_until_async, write


def test_wait_until_returns_the_first_true_value() -> None:
    calls = iter([0, "", None, 7])
    assert wait_until(lambda: next(calls), timeout=5, interval=0.001) == 7


def test_wait_until_fails_the_test_naming_what_never_happened() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"not within 0\.2 s: the door opened"):
        wait_until(lambda: False, timeout=0.2, what="the door opened")
    assert 0.2 <= time.monotonic() - started < 2


def test_wait_until_async_keeps_the_loop_running_and_fails_at_its_deadline() -> None:
    async def scenario() -> None:
        done = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, done.set)
        assert await wait_until_async(done.is_set, timeout=5) is True

        async def never() -> bool:
            return False

        with pytest.raises(AssertionError, match="never async"):
            await wait_until_async(never, timeout=0.1, what="never async")

    asyncio.run(scenario())


def test_serve_app_answers_on_loopback_and_stops() -> None:
    import urllib.request

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_get("/", hello)
        return app

    with serve_app(make_app) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.read() == b"hi"
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_heisen_runs_the_command_line_with_a_plain_environment(tmp_path: Path) -> None:
    result = heisen("--version", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "heisen" in result.stdout.lower()
    path = write(tmp_path / "run", "apiVersion: heisen/v1\nphases: {}\n", name="manifest.yaml")
    assert manifest_of(path.parent) == {"apiVersion": "heisen/v1", "phases": {}}
