"""heisen._eventloop: HEISEN_EVENT_LOOP picks the loop, and signals behave alike on both."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from heisen import _eventloop
from heisen.errors import UsageError
from heisen.system._tcpproxy import Address, TcpProxy
from heisen.system.stub import StubServer

uvloop = pytest.importorskip("uvloop")

# No uvloop transport is an `asyncio.Transport`, and the proxy asserts that one is in
# `connection_made`. It also pauses reading there, which uvloop undoes: a client's first
# bytes reach a link with no upstream yet, and the link drops. A strict mark: fixed, the
# test fails here until its mark goes.
PROXY_ON_UVLOOP = pytest.mark.xfail(
    strict=True,
    reason="system/_tcplink.py: the Transport asserts, and pause_reading() in connection_made",
)


def running_loop_type(monkeypatch: pytest.MonkeyPatch, choice: str | None) -> type:
    if choice is None:
        monkeypatch.delenv(_eventloop.EVENT_LOOP_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(_eventloop.EVENT_LOOP_VARIABLE, choice)

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    return _eventloop.run(loop_type())


def test_the_default_is_asyncio_and_auto_picks_uvloop_when_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert issubclass(running_loop_type(monkeypatch, None), asyncio.BaseEventLoop)
    assert _eventloop.name() == "asyncio"
    assert issubclass(running_loop_type(monkeypatch, "auto"), uvloop.Loop)
    assert _eventloop.name() == "uvloop"


def test_asyncio_forced_runs_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_type = running_loop_type(monkeypatch, "asyncio")
    assert issubclass(loop_type, asyncio.BaseEventLoop)
    assert not issubclass(loop_type, uvloop.Loop)
    assert _eventloop.name() == "asyncio"


def test_uvloop_forced_runs_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    assert issubclass(running_loop_type(monkeypatch, "UVLoop "), uvloop.Loop)


def test_an_unknown_choice_is_a_usage_error_that_suggests_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_eventloop.EVENT_LOOP_VARIABLE, "uvlop")
    with pytest.raises(UsageError, match="did you mean 'uvloop'"):
        _eventloop.name()


WITHOUT_UVLOOP = """
    import sys
    sys.modules["uvloop"] = None  # what an install without the extra looks like to import
    from heisen import _eventloop
    from heisen.errors import UsageError

    async def answer():
        return 42

    try:
        print(_eventloop.name(), _eventloop.run(answer()))
    except UsageError as exc:
        print("UsageError:", exc)
"""


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "asyncio 42"),
        ("asyncio", "asyncio 42"),
        ("uvloop", "UsageError: HEISEN_EVENT_LOOP=uvloop, but uvloop is not installed"),
    ],
)
def test_without_uvloop(choice: str, expected: str) -> None:
    env = {**os.environ, _eventloop.EVENT_LOOP_VARIABLE: choice}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WITHOUT_UVLOOP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(expected), result.stdout
    if choice == "uvloop":
        assert "pip install 'heisen-races[uvloop]'" in result.stdout


@pytest.mark.parametrize("choice", ["asyncio", "uvloop"])
def test_run_hands_back_the_result_and_the_error_like_asyncio_run(
    monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    monkeypatch.setenv(_eventloop.EVENT_LOOP_VARIABLE, choice)

    async def fails() -> None:
        await asyncio.sleep(0)
        raise LookupError("from the coroutine")

    async def answers() -> int:
        await asyncio.sleep(0)
        return 42

    assert _eventloop.run(answers()) == 42
    with pytest.raises(LookupError, match="from the coroutine"):
        _eventloop.run(fails())


def test_a_uvloop_run_gives_the_wakeup_fd_back_and_leaves_no_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_eventloop.EVENT_LOOP_VARIABLE, "uvloop")
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        _eventloop.run(asyncio.sleep(0.01))
        assert signal.set_wakeup_fd(previous) == write_fd
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert "heisen-signal-relay" not in [thread.name for thread in threading.enumerate()]


def start(code: str, choice: str) -> subprocess.Popen[str]:
    """`code` in a subprocess on `choice`, once it has printed "ready"."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, _eventloop.EVENT_LOOP_VARIABLE: choice},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):  # byte by byte: communicate() must see what follows
        byte = os.read(process.stdout.fileno(), 1)
        if not byte:
            break
        line += byte
    assert line.decode().strip() == "ready"
    return process


@pytest.mark.parametrize("choice", ["asyncio", "uvloop"])
def test_a_signal_during_a_run_starts_the_stop_deadline(choice: str) -> None:
    # uvloop points the wakeup fd at its own socket while it runs: without the relay the
    # deadline's watcher never hears of the signal, and the run sleeps its 30 s out.
    process = start(
        """
        import asyncio, os, signal
        from heisen._eventloop import run
        from heisen._interrupts import stop_deadline

        def give_up():
            print("gave up", flush=True)
            os._exit(7)

        async def keeps_working():
            asyncio.get_running_loop().call_soon(lambda: print("ready", flush=True))
            await asyncio.sleep(30)

        signal.signal(signal.SIGTERM, lambda *_: None)  # the signal is seen, the work goes on
        with stop_deadline(0.5, give_up):
            run(keeps_working())
        """,
        choice,
    )
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert (process.returncode, out.strip()) == (7, "gave up"), err


@pytest.mark.parametrize("choice", ["asyncio", "uvloop"])
def test_ctrl_c_is_not_lost_in_a_task_that_swallows_its_cancellation(choice: str) -> None:
    process = start(
        """
        import asyncio, sys
        from heisen._eventloop import run
        from heisen._interrupts import interrupts_raise

        async def swallows_one_cancellation():
            asyncio.get_running_loop().call_soon(lambda: print("ready", flush=True))
            try:
                await asyncio.sleep(20)
            except asyncio.CancelledError:
                await asyncio.sleep(0.1)

        with interrupts_raise():
            try:
                run(swallows_one_cancellation())
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(130)
        print("finished", flush=True)
        """,
        choice,
    )
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert (process.returncode, out.strip()) == (130, "interrupted"), err


def run_on(choice: str, scenario: Coroutine[Any, Any, None]) -> None:
    """Run `scenario` on `choice` in a thread of its own, as heisen's servers run beside
    their clients; fail on any error the loop caught in a callback too."""
    caught: list[dict[str, Any]] = []
    failed: list[BaseException] = []

    async def watched() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: caught.append(context))
        await asyncio.wait_for(scenario, 5.0)

    def run() -> None:
        try:
            _eventloop.run(watched())
        except BaseException as exc:
            failed.append(exc)

    os.environ[_eventloop.EVENT_LOOP_VARIABLE] = choice
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)
    finally:
        del os.environ[_eventloop.EVENT_LOOP_VARIABLE]
    if failed:
        raise failed[0]
    assert [context["message"] for context in caught] == []


async def stub_answers() -> None:
    async with StubServer(None) as stub:
        reader, writer = await asyncio.open_connection("127.0.0.1", stub.port)
        writer.write(b"GET /nothing-mapped HTTP/1.1\r\nHost: stub\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 404"), answer[:100]
        assert [logged.request.target for logged in stub.core.journal.newest_first()] == [
            "/nothing-mapped"
        ]


@pytest.mark.parametrize("choice", ["asyncio", "uvloop"])
def test_the_stub_answers_real_requests_on(choice: str) -> None:
    run_on(choice, stub_answers())


async def proxy_carries_bytes() -> None:
    """A client speaks first while the proxy is still connecting upstream: the proxy holds it."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
        writer.close()

    # A listener whose one-place queue a first connection fills: the proxy's connect
    # stays pending until that connection is accepted.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    fillers = [socket.create_connection(listener.getsockname())]
    proxy = TcpProxy(
        "echo",
        Address("127.0.0.1", 0),
        [Address("127.0.0.1", listener.getsockname()[1])],
        rng=random.Random(1),
    )
    words = b"first words, sent before the proxy reaches its upstream"

    def client() -> bytes:
        # From another thread, as from another process: it speaks first (HTTP, Redis and
        # PostgreSQL clients do), while the proxy is still connecting upstream.
        with socket.create_connection(("127.0.0.1", proxy.listen.port), timeout=4) as sock:
            sock.sendall(words)
            answer = b""
            while len(answer) < len(words) and (chunk := sock.recv(65536)):
                answer += chunk
            return answer

    await proxy.start()
    upstream: asyncio.Server | None = None
    try:
        answer = asyncio.create_task(asyncio.to_thread(client))
        await asyncio.sleep(0.3)
        upstream = await asyncio.start_server(echo, sock=listener)
        for filler in fillers:
            filler.close()
        assert await answer == words
    finally:
        await proxy.stop()
        if upstream is not None:
            upstream.close()
        listener.close()


@pytest.mark.parametrize("choice", ["asyncio", pytest.param("uvloop", marks=PROXY_ON_UVLOOP)])
def test_the_tcp_proxy_carries_real_traffic_on(choice: str) -> None:
    run_on(choice, proxy_carries_bytes())
