"""Run `python:` probes in a child process, so nothing a probe does can take heisen down.

A probe is user code: it may abort, segfault, call `sys.exit`, loop forever,
print megabytes or return something that is not data. It runs in a worker
process (`_python_worker.py`), one per run and pipeline directory, kept
between calls (a probe's imports are paid once, and module state lives on
between trials as it did in-process) and started again after it dies. Each
call has a deadline; past it, the worker's whole process group is killed.
Every failure is a `ProbeError` naming the probe and what happened.

Lifecycle: the worker gets SIGKILL from the kernel when heisen dies
(PR_SET_PDEATHSIG, set by the worker itself before any probe code runs). The
kernel sends it when the *thread* that started the worker ends, so workers
are started by one daemon thread that lives as long as heisen. Workers are
stopped by `stop_python_probes()` (also at exit), and a call for another run
(a different `run_dir` in its context) stops the previous run's worker.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import json
import math
import os
import queue
import re
import select
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from heisen._serialised import JsonObject
from heisen.oracle._python_ref import search_path
from heisen.oracle._python_worker import MAX_MESSAGE_BYTES

__all__ = ["DEFAULT_TIMEOUT_S", "python_probe_pids", "run_python_probe", "stop_python_probes"]

DEFAULT_TIMEOUT_S = 10.0
"""How long one `python:` probe call may take unless its invariant sets `timeout:`."""

_WORKER = Path(__file__).with_name("_python_worker.py")
_OUTPUT_TAIL_BYTES = 8192
_HEADER_BYTES = 4
_FAULTHANDLER_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


class _Failure(Exception):
    def __init__(self, message: str, fault: str = "environment") -> None:
        super().__init__(message)
        self.fault = fault


class _Spawner:
    """Starts processes from one long-lived daemon thread (see the module docstring)."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._requests = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, start: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="heisen-python-probes", daemon=True
                )
                self._thread.start()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._requests.put((start, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            start, future = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as exc:
                future.set_exception(exc)


_spawner = _Spawner()


class _Worker:
    """One worker process: `call()` sends a request and waits for its reply until a deadline."""

    def __init__(self, path: list[str]) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.popen: subprocess.Popen[bytes] | None = None
        self._request_fd = -1
        self._reply_fd = -1
        self._tail = bytearray()
        self._drain: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def _start(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        argv = [sys.executable, "-I", str(_WORKER), str(request_read), str(reply_write)]
        argv.append(str(os.getpid()))

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, reply_write),
                start_new_session=True,
            )

        try:
            self.popen = _spawner.run(start)
        except OSError as exc:
            for fd in (request_read, request_write, reply_read, reply_write):
                os.close(fd)
            raise _Failure(f"could not start its worker: {exc}") from exc
        finally:
            if self.popen is not None:
                os.close(request_read)
                os.close(reply_write)
        self._request_fd, self._reply_fd = request_write, reply_read
        self._tail = bytearray()
        self._drain = threading.Thread(
            target=self._keep_tail, args=(self.popen,), name="heisen-probe-output", daemon=True
        )
        self._drain.start()
        self._send({"path": self.path}, time.monotonic() + DEFAULT_TIMEOUT_S)

    def _keep_tail(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        fd = popen.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self._tail += chunk
            del self._tail[:-_OUTPUT_TAIL_BYTES]

    def call(self, ref: str, context: Mapping[str, Any], timeout_s: float) -> JsonObject:
        deadline = time.monotonic() + timeout_s
        if self.popen is None or self.popen.poll() is not None:
            self.stop()
            self._start()
        self._send({"ref": ref, "context": dict(context)}, deadline)
        reply = self._receive(deadline, timeout_s)
        if "error" in reply:
            raise _Failure(str(reply["error"]), str(reply.get("fault", "environment")))
        values = reply["values"]
        assert isinstance(values, dict)
        return values

    def _send(self, message: Mapping[str, Any], deadline: float) -> None:
        try:
            body = json.dumps(message, default=str).encode()
        except (TypeError, ValueError) as exc:
            raise _Failure(
                f"could not be called: its context is not JSON ({exc})", "pipeline"
            ) from exc
        data = len(body).to_bytes(_HEADER_BYTES, "big") + body
        view = memoryview(data)
        while view:
            if not self._wait(self._request_fd, deadline, write=True):
                self._kill()
                raise _Failure(
                    "could not be sent to its worker, which stopped reading; it was killed"
                )
            try:
                view = view[os.write(self._request_fd, view) :]
            except OSError as exc:  # EPIPE: the worker is gone
                raise self._crashed() from exc

    def _receive(self, deadline: float, timeout_s: float) -> JsonObject:
        header = self._read(_HEADER_BYTES, deadline, timeout_s)
        size = int.from_bytes(header, "big")
        if size > MAX_MESSAGE_BYTES + 1024:
            self._kill()
            raise _Failure(f"got a reply of {size} bytes from its worker; it was killed")
        reply = json.loads(self._read(size, deadline, timeout_s))
        assert isinstance(reply, dict)
        return reply

    def _read(self, size: int, deadline: float, timeout_s: float) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            if not self._wait(self._reply_fd, deadline):
                self._kill()
                raise _Failure(f"did not return within {_seconds(timeout_s)}; it was killed")
            chunk = os.read(self._reply_fd, min(size - len(chunks), 1 << 20))
            if not chunk:
                raise self._crashed()
            chunks += chunk
        return bytes(chunks)

    @staticmethod
    def _wait(fd: int, deadline: float, *, write: bool = False) -> bool:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, writable, _ = select.select(
                [] if write else [fd], [fd] if write else [], [], min(left, 1.0)
            )
            if readable or writable:
                return True

    def _crashed(self) -> _Failure:
        """The worker died during a call: say how, and where when faulthandler told us."""
        assert self.popen is not None
        try:
            code = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            return _Failure("lost its worker, which closed its reply pipe; it was killed")
        if self._drain is not None:
            self._drain.join(timeout=1)
        output = self._tail.decode("utf-8", "replace")
        self.stop()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            message = f"was killed by {name}"
        else:
            message = f"exited with status {code}"
        frame = _crash_site(output)
        if frame:
            message += f" (at {frame})"
        else:
            lines = [line for line in output.splitlines() if line.strip()]
            if lines:
                message += f"; its last output: {lines[-1][:200]}"
        return _Failure(message)

    def _kill(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        """Close the pipes (the worker exits at end of input), then make sure the group is gone."""
        for fd in (self._request_fd, self._reply_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._request_fd = self._reply_fd = -1
        popen, self.popen = self.popen, None
        if popen is None:
            return
        try:
            popen.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)  # also what the probe started
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
        if self._drain is not None:
            self._drain.join(timeout=1)
        if popen.stdout is not None:
            popen.stdout.close()


_workers: dict[tuple[str | None, str | None], _Worker] = {}
_workers_lock = threading.Lock()


def _crash_site(output: str) -> str | None:
    """`file.py, line N` of the innermost frame faulthandler printed outside the standard library."""
    frames = _FAULTHANDLER_FRAME.findall(output)
    stdlib = tuple(
        os.path.join(sysconfig.get_paths()[name], "") for name in ("stdlib", "platstdlib")
    )
    for filename, line in frames:
        if not filename.startswith(stdlib):
            return f"{os.path.basename(filename)}, line {line}"
    return f"{os.path.basename(frames[0][0])}, line {frames[0][1]}" if frames else None


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _worker_for(base_dir: Path | None, run_dir: str | None) -> _Worker:
    key = (str(base_dir.resolve()) if base_dir is not None else None, run_dir)
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None:
            for other in [k for k in _workers if k[1] != run_dir]:
                _workers.pop(other).stop()  # another run's worker: that run is over
            worker = _workers[key] = _Worker(search_path(base_dir))
        return worker


def run_python_probe(
    ref: str,
    context: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    timeout_s: float | None = None,
) -> JsonObject:
    """Call the probe `ref` in the worker; its values, or ProbeError saying what happened."""
    from heisen.oracle.probes import ProbeError

    timeout = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    if not (math.isfinite(timeout) and timeout > 0):
        raise ProbeError(
            f"python probe {ref}: timeout must be a finite number of seconds above 0, "
            f"not {timeout_s!r}",
            fault="pipeline",
        )
    run_dir = context.get("run_dir")
    worker = _worker_for(base_dir, str(run_dir) if run_dir is not None else None)
    if not worker.lock.acquire(timeout=timeout):
        raise ProbeError(
            f"python probe {ref} waited {_seconds(timeout)} for the previous call to finish"
        )
    try:
        return worker.call(ref, context, timeout)
    except _Failure as exc:
        raise ProbeError(f"python probe {ref} {exc}", fault=exc.fault) from exc
    finally:
        worker.lock.release()


def stop_python_probes() -> None:
    """Stop every probe worker (idempotent; also run at exit)."""
    with _workers_lock:
        workers = list(_workers.values())
        _workers.clear()
    for worker in workers:
        with worker.lock:
            worker.stop()


def python_probe_pids() -> list[int]:
    """The process ids of the live probe workers."""
    with _workers_lock:
        return [pid for worker in _workers.values() if (pid := worker.pid) is not None]


atexit.register(stop_python_probes)
