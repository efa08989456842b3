"""ReplicaSet against real HTTP services in real processes (and real cgroups where writable)."""

from __future__ import annotations

import http.client
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heisen.errors import SystemUnavailable
from heisen.system._cgroups import CgroupManager
from heisen.system._health import probe_once, wait_healthy
from heisen.system._process import live_processes
from heisen.system._replicas import Backoff, ReplicaSet

SERVICE = r"""
import os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.environ.get("FAIL_AT_START"):
    print("boom: " + os.environ["FAIL_AT_START"], flush=True)
    sys.exit(3)
if os.environ.get("BUSY"):
    def spin():
        while True:
            pass
    threading.Thread(target=spin, daemon=True).start()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = int(os.environ.get("HEALTH_STATUS", "200")) if self.path == "/health" else 200
        body = (os.environ.get("GREETING", "hello") + " " + os.environ["PORT"]).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

print("listening on", os.environ["PORT"], flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    running_before = {process.pid for process in live_processes()}  # e.g. the session's databases
    yield
    leaked = [p for p in live_processes() if p.pid not in running_before]
    for process in leaked:
        process.stop(grace_s=1)
    assert not leaked, f"processes left running: {leaked}"


@pytest.fixture
def service(tmp_path: Path) -> list[str]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    return [sys.executable, str(script)]


class Recorder:
    """Collects on_ready_change calls with the time each arrived."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, list[tuple[str, int]]]] = []
        self.changed = threading.Condition()
        self.since = 0.0  # wait_for ignores calls before this time

    def __call__(self, ready: list[tuple[str, int]]) -> None:
        with self.changed:
            self.calls.append((time.monotonic(), ready))
            self.changed.notify_all()

    def wait_for(
        self, predicate: object, timeout_s: float = 20.0
    ) -> tuple[float, list[tuple[str, int]]]:
        assert callable(predicate)
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                for when, ready in self.calls:
                    if predicate(ready) and when >= self.since:
                        return when, ready
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no matching readiness change in {self.calls}"
                self.changed.wait(remaining)


def get(port: int, path: str = "/") -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def test_probe_once_and_wait_healthy(service: list[str], tmp_path: Path) -> None:
    with ReplicaSet(
        "probe", service, replicas=1, cwd=None, log_dir=tmp_path, env_for=lambda i, p: {}
    ) as rs:
        host, port = rs.ready_endpoints()[0]
        assert probe_once(host, port, "/health").healthy
        assert probe_once(host, port, "/health", expect_status=range(500, 600)).status == 200
        assert wait_healthy(host, port, "/health", deadline_s=2)
    result = probe_once(host, port, "/health", timeout_s=0.2)
    assert not result.healthy and result.error
    assert not wait_healthy(host, port, "/health", deadline_s=0.3)


def test_replicas_serve_on_their_own_ports_with_their_env(
    service: list[str], tmp_path: Path
) -> None:
    recorder = Recorder()
    replicas = ReplicaSet(
        "web",
        service,
        replicas=2,
        cwd=tmp_path,
        log_dir=tmp_path / "logs",
        env_for=lambda index, port: {"GREETING": f"replica{index}"},
        on_ready_change=recorder,
    )
    with replicas:
        endpoints = replicas.ready_endpoints()
        assert len(endpoints) == 2 and len({port for _, port in endpoints}) == 2
        answers = sorted(get(port) for _, port in endpoints)
        assert answers == sorted(f"replica{i} {port}" for i, (_, port) in enumerate(endpoints))
        recorder.wait_for(lambda ready: len(ready) == 2)
        info = replicas.replicas_info()
        assert [(r.index, r.ready, r.restarts, r.alive) for r in info] == [
            (0, True, 0, True),
            (1, True, 0, True),
        ]
        assert (tmp_path / "logs" / "web-0.log").read_text().count("listening on") == 1
    assert recorder.calls[-1][1] == []
    assert all(not r.alive for r in replicas.replicas_info())
    replicas.stop()  # idempotent


def test_killed_replica_is_restarted_with_backoff(service: list[str], tmp_path: Path) -> None:
    recorder = Recorder()
    replicas = ReplicaSet(
        "web",
        service,
        replicas=2,
        cwd=None,
        log_dir=tmp_path,
        env_for=lambda i, p: {},
        on_ready_change=recorder,
        backoff=Backoff(initial_s=0.5, cap_s=5.0),
    )
    with replicas:
        old_port = replicas.replicas_info()[0].port
        killed_at = time.monotonic()
        assert replicas.kill(0) is not None

        recorder.since = killed_at
        _dropped_at, ready = recorder.wait_for(lambda ready: len(ready) == 1)
        assert ("127.0.0.1", old_port) not in ready
        back_at, ready = recorder.wait_for(lambda ready: len(ready) == 2)
        assert back_at - killed_at >= 0.5, "restarted before the backoff delay"
        info = replicas.replicas_info()[0]
        assert info.restarts == 1 and info.ready and ("127.0.0.1", info.port) in ready
        assert "killed" not in get(info.port)

        # A second crash soon after waits twice as long.
        killed_again = time.monotonic()
        replicas.kill(0)
        recorder.since = killed_again
        recorder.wait_for(lambda ready: len(ready) == 1)
        back_again, _ = recorder.wait_for(lambda ready: len(ready) == 2)
        assert back_again - killed_again >= 1.0
        assert replicas.replicas_info()[0].restarts == 2


def test_policy_never_leaves_a_dead_replica_dead(service: list[str], tmp_path: Path) -> None:
    with ReplicaSet(
        "web",
        service,
        replicas=1,
        cwd=None,
        log_dir=tmp_path,
        env_for=lambda i, p: {},
        restart_policy="Never",
    ) as replicas:
        replicas.kill(0, signal.SIGTERM)
        time.sleep(1.0)
        info = replicas.replicas_info()[0]
        assert not info.alive and not info.ready and info.restarts == 0
        assert replicas.ready_endpoints() == []


def test_startup_failure_carries_the_log_tail(service: list[str], tmp_path: Path) -> None:
    replicas = ReplicaSet(
        "web",
        service,
        replicas=2,
        cwd=None,
        log_dir=tmp_path,
        env_for=lambda index, port: (
            {"FAIL_AT_START": "DATABASE_URL is not set"} if index == 1 else {}
        ),
    )
    with pytest.raises(SystemUnavailable) as caught:
        replicas.start()
    message = str(caught.value)
    assert "web replica 1" in message
    assert "exited with code 3" in message
    assert "boom: DATABASE_URL is not set" in message
    assert all(not r.alive for r in replicas.replicas_info())


def test_unhealthy_replica_fails_at_the_deadline(service: list[str], tmp_path: Path) -> None:
    replicas = ReplicaSet(
        "web",
        service,
        replicas=1,
        cwd=None,
        log_dir=tmp_path,
        startup_deadline_s=1.5,
        env_for=lambda index, port: {"HEALTH_STATUS": "503"},
    )
    started = time.monotonic()
    with pytest.raises(
        SystemUnavailable, match=r"(?s)not healthy after 1.5s.*HTTP 503.*listening on"
    ):
        replicas.start()
    assert time.monotonic() - started < 10


def test_rolling_restart_keeps_a_replica_ready(service: list[str], tmp_path: Path) -> None:
    recorder = Recorder()
    with ReplicaSet(
        "web",
        service,
        replicas=2,
        cwd=None,
        log_dir=tmp_path,
        env_for=lambda i, p: {"GREETING": "before"},
        on_ready_change=recorder,
    ) as replicas:
        old_ports = {port for _, port in replicas.ready_endpoints()}
        replicas.restart_all(lambda i, p: {"GREETING": "after"})
        endpoints = replicas.ready_endpoints()
        assert len(endpoints) == 2
        assert not old_ports & {port for _, port in endpoints}
        assert all(get(port).startswith("after ") for _, port in endpoints)
        assert all(ready for _, ready in recorder.calls), "no ready replica at some point"


@pytest.mark.slow
@pytest.mark.cgroups
def test_replicas_run_inside_their_cgroups(service: list[str], tmp_path: Path) -> None:
    manager = CgroupManager(f"rs{os.getpid()}")
    if (reason := manager.available()) is not None:
        pytest.skip(f"cgroups not writable here: {reason}")
    try:
        replicas = ReplicaSet(
            "busy",
            service,
            replicas=1,
            cwd=None,
            log_dir=tmp_path,
            env_for=lambda i, p: {"BUSY": "1"},
            cpu=0.25,
            memory=256 * 1024**2,
            cgroups=manager,
            limits_fallback="error",
        )
        with replicas:
            assert replicas.enforcement.mechanism == "cgroup"
            (group,) = manager.groups()
            assert replicas.replicas_info()[0].pid in group.pids()
            assert group.cpu_quota() == (25_000, 100_000)
            assert group.memory_limit() == 256 * 1024**2
            before, started = replicas.cpu_usage_s(), time.monotonic()
            time.sleep(3.0)
            used = (replicas.cpu_usage_s() - before) / (time.monotonic() - started)
            throttling = replicas.throttling()
            directories = group.directories()
        assert used <= 0.3, f"replica used {used:.3f} CPU under 250m"
        assert throttling.throttled_periods > 0 and throttling.throttled_s > 0
        assert not any(d.exists() for d in directories)
    finally:
        manager.remove_all()


@pytest.mark.slow
def test_dutycycle_fallback_without_cgroups(service: list[str], tmp_path: Path) -> None:
    with ReplicaSet(
        "busy",
        service,
        replicas=1,
        cwd=None,
        log_dir=tmp_path,
        env_for=lambda i, p: {"BUSY": "1"},
        cpu=0.25,
        cgroups=None,
        limits_fallback="dutycycle",
    ) as replicas:
        assert replicas.enforcement.mechanism == "dutycycle"
        assert replicas.enforcement.reason == "no cgroup manager given"
        before, started = replicas.cpu_usage_s(), time.monotonic()
        time.sleep(2.0)
        used = (replicas.cpu_usage_s() - before) / (time.monotonic() - started)
        throttling = replicas.throttling()
    assert used <= 0.45, f"replica used {used:.3f} CPU under a 0.25 duty cycle"
    assert throttling.throttled_periods > 0


def test_limits_fallback_error_refuses_without_cgroups(service: list[str], tmp_path: Path) -> None:
    replicas = ReplicaSet(
        "web",
        service,
        replicas=1,
        cwd=None,
        log_dir=tmp_path,
        env_for=lambda i, p: {},
        cpu=0.5,
        cgroups=None,
        limits_fallback="error",
    )
    with pytest.raises(SystemUnavailable, match="cannot apply CPU/memory limits"):
        replicas.start()
