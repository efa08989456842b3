"""Signals end a run promptly, and a stuck stop is cut short by the deadline."""

import os
import signal
import subprocess
import sys
import textwrap
import time


def start(code: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    # Byte by byte from the pipe: a buffered readline() can take the lines after "ready" too,
    # and communicate() reads the pipe itself, so they would be lost.
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(process.stdout.fileno(), 1)
        if not byte:
            break
        line += byte
    assert line.decode().strip() == "ready"
    return process


def test_a_stop_stuck_after_a_signal_gives_up_at_the_deadline():
    process = start(
        """
        import os, signal, sys, time
        from heisen._interrupts import stop_deadline

        def give_up():
            print("gave up", flush=True)
            os._exit(7)

        signal.signal(signal.SIGTERM, lambda *_: None)  # the signal is seen, the work goes on
        with stop_deadline(1.0, give_up):
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 7
    assert out.strip() == "gave up"
    assert 0.9 < time.monotonic() - began < 10


def test_without_a_signal_the_deadline_never_fires():
    process = start(
        """
        import os, threading, time
        from heisen._interrupts import stop_deadline

        with stop_deadline(0.2, lambda: os._exit(7)):
            print("ready", flush=True)
            time.sleep(0.5)
        time.sleep(0.5)
        print([t.name for t in threading.enumerate()], flush=True)
        """
    )
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "heisen-stop-deadline" not in out


def test_ctrl_c_is_not_lost_in_an_asyncio_task_that_swallows_its_cancellation():
    process = start(
        """
        import asyncio, sys
        from heisen._interrupts import interrupts_raise

        async def swallows_one_cancellation():
            # "ready" once this task is parked in its sleep, not before
            asyncio.get_running_loop().call_soon(lambda: print("ready", flush=True))
            try:
                await asyncio.sleep(20)
            except asyncio.CancelledError:
                await asyncio.sleep(0.1)  # then returns as if nothing happened

        with interrupts_raise():
            try:
                asyncio.run(swallows_one_cancellation())
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(130)
        print("finished", flush=True)
        """
    )
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert (process.returncode, out.strip()) == (130, "interrupted"), err


def test_a_signal_whose_exception_python_dropped_is_raised_again_between_steps():
    process = start(
        """
        import os, signal, sys, time
        from heisen._interrupts import Terminated, interrupts_raise, raise_if_interrupted

        class DroppedOnDelete:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler raises in here: Python prints it and drops it

        with interrupts_raise():
            print("ready", flush=True)
            DroppedOnDelete()
            print("the work went on", flush=True)
            try:
                raise_if_interrupted()
            except Terminated:
                print("raised again", flush=True)
        """
    )
    out, err = process.communicate(timeout=20)
    assert out.split() == ["the", "work", "went", "on", "raised", "again"], (out, err)
    assert "Exception ignored" in err
