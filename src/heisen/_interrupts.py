"""How Ctrl-C and SIGTERM end a run: raised in the main thread, cleanup shielded, exit bounded.

    with interrupts_raise(), stop_deadline(40.0, give_up):
        try:
            work()
        finally:
            with signals_shielded():
                cleanup()

The first signal raises KeyboardInterrupt (SIGTERM as its subclass
`Terminated`), so `finally` blocks run and no `except Exception` swallows it.
The same signal also starts a clock on a watcher thread: if the process is
still busy `seconds` later, whatever it is stuck in, `give_up` runs there.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C: a BaseException, so no `except Exception` can swallow it."""


# The signal received inside the current `interrupts_raise()` block, if any.
_received: signal.Signals | None = None


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signal.SIGTERM
    raise Terminated("terminated by SIGTERM")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # Not signal.default_int_handler, which asyncio.run() swaps for a handler that only
    # cancels its main task: a task that outlives its cancellation would hide the Ctrl-C.
    global _received
    _received = signal.SIGINT
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise the interrupt again if its signal came and the work goes on.

    Where the handler ran decides whether its exception propagates: raised inside
    a `__del__`, a weakref callback or an import lock's callback, it is printed as
    "Exception ignored" and lost. Loops call this between steps so such a signal
    still ends the run, not the stop deadline.
    """
    if _received is signal.SIGTERM:
        raise Terminated("terminated by SIGTERM")
    if _received is signal.SIGINT:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _handlers(handlers: dict[signal.Signals, Any]) -> Iterator[None]:
    """Install `handlers` for the block, then put back what was there."""
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGINT raise in the main thread, whatever it is doing.

    An error that leaves the block after one of them came is the interrupt's
    doing, or cannot be told from it: code that caught the interrupt and raised
    an error of its own (a driver whose wait was cut short, a worker that lost
    its caller), or work that failed because the stop had begun. It leaves as
    the interrupt, chained from the error, so a stop is never an error verdict.
    """
    global _received
    _received = None
    with _handlers({signal.SIGTERM: _raise_terminated, signal.SIGINT: _raise_interrupt}):
        try:
            yield
        except Exception as exc:
            if _received is None:
                raise
            if _received is signal.SIGTERM:
                raise Terminated("terminated by SIGTERM") from exc
            raise KeyboardInterrupt from exc


def signals_shielded() -> contextlib.AbstractContextManager[None]:
    """Cleanup that a second Ctrl-C or SIGTERM must not cut short (a no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _handlers({signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_IGN})


@contextlib.contextmanager
def stop_deadline(seconds: float, give_up: Callable[[], None]) -> Iterator[None]:
    """Run `give_up` on a watcher thread if the block is still running `seconds` after a signal.

    The kernel-level wakeup fd tells the watcher of a signal at once, even when
    the main thread is blocked where Python cannot run its handler.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    finished = threading.Event()

    def watch() -> None:
        select.select([read_fd], [], [])
        if finished.is_set():
            return
        if not finished.wait(seconds):
            give_up()

    watcher = threading.Thread(target=watch, name="heisen-stop-deadline", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        signal.set_wakeup_fd(previous_fd)
        os.write(write_fd, b"\0")  # release the watcher if no signal came
        watcher.join(timeout=1.0)
        os.close(read_fd)
        os.close(write_fd)
