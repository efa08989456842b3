"""Which event loop runs heisen's coroutines: asyncio's, unless uvloop is asked for.

    HEISEN_EVENT_LOOP=asyncio   the standard library's loop (default)
    HEISEN_EVENT_LOOP=auto      uvloop if importable, else asyncio
    HEISEN_EVENT_LOOP=uvloop    uvloop, or a UsageError saying how to install it

asyncio is the default because it measured better on the paths that use
this module (`bench/README.md`, "Event loop"): on a quiet machine the stub
server answered 34,668 requests/s on asyncio against 30,127 on uvloop, and
kept its delays within 0.12 ms of the intended at p99 against 2.24 ms.

`run(coro)` stands in for `asyncio.run(coro)`; `new_event_loop()` is for the
callers that take a loop (aiohttp's `web.run_app`); `name()` says which loop
they get, for the manifest and the benchmarks.

One difference of uvloop's needs care: while it runs in the main thread, it
points the signal wakeup fd at its own socket and forwards nothing to the
one set before it, so `_interrupts.stop_deadline`'s watcher would never hear
of a Ctrl-C or SIGTERM that came during the run. `_WakeupRelay` takes the
wakeup fd back for each run and copies every signal byte to both, from a
thread: the main thread is where the signal handler raises, and a copy made
there could be cut short by the very signal it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any, TypeVar

from heisen.errors import UsageError, did_you_mean

EVENT_LOOP_VARIABLE = "HEISEN_EVENT_LOOP"

T = TypeVar("T")


class EventLoopChoice(StrEnum):
    AUTO = "auto"
    ASYNCIO = "asyncio"
    UVLOOP = "uvloop"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end on a new loop of the chosen kind, like `asyncio.run`."""
    factory = None if name() == "asyncio" else _uvloop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the chosen kind, for the caller to run and close."""
    return asyncio.new_event_loop() if name() == "asyncio" else _uvloop_factory()()


def name() -> str:
    """`"uvloop"` or `"asyncio"`: the loop `run` and `new_event_loop` use under $HEISEN_EVENT_LOOP."""
    choice = _choice()
    if choice is EventLoopChoice.ASYNCIO:
        return "asyncio"
    if _uvloop_importable():
        return "uvloop"
    if choice is EventLoopChoice.UVLOOP:
        raise UsageError(
            f"{EVENT_LOOP_VARIABLE}=uvloop, but uvloop is not installed: "
            f"`pip install 'heisen-races[uvloop]'` (no Windows build), "
            f"or set {EVENT_LOOP_VARIABLE}=asyncio"
        )
    return "asyncio"


def _choice() -> EventLoopChoice:
    text = os.environ.get(EVENT_LOOP_VARIABLE, "").strip().lower() or EventLoopChoice.ASYNCIO.value
    try:
        return EventLoopChoice(text)
    except ValueError:
        choices = [choice.value for choice in EventLoopChoice]
        raise UsageError(
            f"{EVENT_LOOP_VARIABLE}={text!r} is not one of {', '.join(choices)}"
            f"{did_you_mean(text, choices)}"
        ) from None


def _uvloop_importable() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    class RelayingLoop(uvloop.Loop):
        def run_forever(self) -> None:
            outer_fd = _wakeup_fd()
            if outer_fd == -1:
                super().run_forever()
                return
            relay = _WakeupRelay(outer_fd)
            # Queued first, so it runs once uvloop has set its own wakeup fd.
            taking_over = self.call_soon(relay.take_over)
            try:
                super().run_forever()
            finally:
                taking_over.cancel()
                relay.close()

    return RelayingLoop


def _wakeup_fd() -> int:
    """The signal wakeup fd set now, or -1 (always -1 off the main thread, where none applies)."""
    if threading.current_thread() is not threading.main_thread():
        return -1
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    return fd


class _WakeupRelay:
    """Copies each signal byte written to its socket to uvloop's wakeup fd and to `outer_fd`.

    uvloop closes its socket when its run ends, and puts `outer_fd` back as the
    wakeup fd; the relay writes to a duplicate of uvloop's, so a late copy can
    fail but never lands on an fd number reused meanwhile.
    """

    def __init__(self, outer_fd: int) -> None:
        self._outer_fd = outer_fd
        self._loop_fd = -1
        self._receive, self._send = socket.socketpair()
        self._send.setblocking(False)
        self._thread = threading.Thread(target=self._copy, name="heisen-signal-relay", daemon=True)

    def take_over(self) -> None:
        uvloop_fd = signal.set_wakeup_fd(self._send.fileno(), warn_on_full_buffer=False)
        self._loop_fd = os.dup(uvloop_fd) if uvloop_fd != -1 else -1
        self._thread.start()

    def _copy(self) -> None:
        while data := self._receive.recv(256):
            for fd in (self._loop_fd, self._outer_fd):
                with contextlib.suppress(OSError):
                    os.write(fd, data)

    def close(self) -> None:
        self._send.close()  # the copying thread reads the end of the stream and returns
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        self._receive.close()
        if self._loop_fd != -1:
            os.close(self._loop_fd)
