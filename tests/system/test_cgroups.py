"""CPU and memory limits on real processes: cgroups where writable, the duty cycle everywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heisen.errors import SystemUnavailable
from heisen.system._cgroups import CgroupManager, Throttling, _remove_tree, cgroup_version
from heisen.system._dutycycle import DutyCycle, process_cpu_s
from heisen.system._process import live_processes, spawn
from support import wait_until

BUSY = [sys.executable, "-c", "while True: pass"]
WINDOW_S = 5.0


def _our_run_dirs() -> set[Path]:
    probe = CgroupManager("leakcheck")
    found: set[Path] = set()
    for base in set(probe._bases().values()):
        if base.is_dir():
            found.update(p for p in base.iterdir() if p.is_dir() and f"-{os.getpid()}-" in p.name)
    return found


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test that leaves a process or a cgroup of this pytest process behind."""
    before = _our_run_dirs()
    running_before = {process.pid for process in live_processes()}  # e.g. the session's databases
    yield
    leaked_processes = [p for p in live_processes() if p.pid not in running_before]
    for process in leaked_processes:
        process.stop(grace_s=1)
    leaked_groups = _our_run_dirs() - before
    for directory in leaked_groups:
        _remove_tree(directory)  # report the leak, but do not leave it
    assert not leaked_processes, f"processes left running: {leaked_processes}"
    assert not leaked_groups, f"cgroups left behind: {sorted(leaked_groups)}"


@pytest.fixture
def cgroups() -> Iterator[CgroupManager]:
    manager = CgroupManager(f"test{time.monotonic_ns() % 10**8}")
    reason = manager.available()
    if reason is not None:
        pytest.skip(f"cgroups not writable here: {reason}")
    try:
        yield manager
    finally:
        manager.remove_all()


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2]


def test_version_detected() -> None:
    assert cgroup_version() in (1, 2, None)


def test_throttling_adds_up() -> None:
    total = Throttling(10, 4, 0.5) + Throttling(5, 1, 0.25)
    assert total == Throttling(15, 5, 0.75)


@pytest.mark.slow
@pytest.mark.cgroups
def test_250m_caps_a_busy_loop_and_records_throttling(
    cgroups: CgroupManager, tmp_path: Path
) -> None:
    group = cgroups.create("busy", cpu=0.25, memory=64 * 1024**2)
    assert group.cpu_quota() == (25_000, 100_000)
    assert group.memory_limit() == 64 * 1024**2
    process = spawn("busy", BUSY, log_path=tmp_path / "busy.log")
    try:
        group.attach(process.pid)
        assert process.pid in group.pids()
        time.sleep(0.5)  # let it settle into the quota
        used_before, started = group.cpu_usage_s(), time.monotonic()
        time.sleep(WINDOW_S)
        used = (group.cpu_usage_s() - used_before) / (time.monotonic() - started)
        throttling = group.throttling()
    finally:
        process.stop(grace_s=1)
    # A quota caps from above; the lower bound only shows the loop ran at all on a loaded machine.
    assert 0.1 < used <= 0.3, f"busy loop used {used:.3f} CPU under a 250m quota"
    assert throttling.periods > 0
    assert throttling.throttled_periods > 0
    assert throttling.throttled_s > 0


@pytest.mark.cgroups
def test_memory_limit_is_enforced(cgroups: CgroupManager, tmp_path: Path) -> None:
    if Path("/proc/swaps").is_file() and len(Path("/proc/swaps").read_text().splitlines()) > 1:
        pytest.skip("swap is on: an over-limit process would swap, not be killed")
    group = cgroups.create("hungry", cpu=None, memory=48 * 1024**2)
    wrapper = 'echo $$ > "$1"; shift; exec "$@"'
    hog = "import time; b = bytearray(256 * 1024 * 1024); time.sleep(30)"
    argv = ["/bin/sh", "-c", wrapper, "join"]
    argv += [str(f) for f in group.procs_files() if "memory" in str(f)]
    argv += [sys.executable, "-c", hog]
    process = spawn("hog", argv, log_path=tmp_path / "hog.log")
    try:
        process.popen.wait(timeout=30)
    finally:
        process.stop(grace_s=0)
    assert process.returncode == -signal.SIGKILL, process.tail()


@pytest.mark.cgroups
def test_remove_all_kills_what_is_inside_and_leaves_nothing(tmp_path: Path) -> None:
    manager = CgroupManager("removal")
    if (reason := manager.available()) is not None:
        pytest.skip(f"cgroups not writable here: {reason}")
    group = manager.create("sleeper", cpu=0.5, memory=None)
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        group.attach(sleeper.pid)
        run_dirs = manager.run_directories()
        assert all(d.is_dir() for d in run_dirs)
        manager.remove_all()
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        assert not any(d.exists() for d in run_dirs)
        manager.remove_all()  # idempotent
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.cgroups
def test_cleanup_stale_removes_groups_of_a_killed_heisen(tmp_path: Path) -> None:
    if (reason := CgroupManager("probe").available()) is not None:
        pytest.skip(f"cgroups not writable here: {reason}")
    owner = textwrap.dedent(
        """
        import subprocess, sys, time
        from heisen.system._cgroups import CgroupManager
        manager = CgroupManager("killed")
        group = manager.create("replica-0", cpu=0.25, memory=64 * 1024**2)
        sleeper = subprocess.Popen(["sleep", "120"], start_new_session=True)
        group.attach(sleeper.pid)
        for directory in manager.run_directories():
            print(directory)
        print(sleeper.pid, flush=True)
        time.sleep(120)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    lines = []
    while not lines or not lines[-1].strip().isdigit():
        line = child.stdout.readline()
        assert line, "owner exited early"
        lines.append(line.strip())
    run_dirs, orphan = [Path(p) for p in lines[:-1]], int(lines[-1])
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    try:
        assert all(d.is_dir() for d in run_dirs), "a SIGKILLed owner cannot clean up"
        assert _state(orphan) not in ("gone", "Z")

        removed = CgroupManager("next").cleanup_stale()

        assert set(run_dirs) <= set(removed)
        assert not any(d.exists() for d in run_dirs)
        wait_until(
            lambda: _state(orphan) in ("gone", "Z"),
            timeout=5,
            what="the orphan inside the stale group was killed",
        )
    finally:
        if _state(orphan) not in ("gone", "Z"):
            os.kill(orphan, signal.SIGKILL)


@pytest.mark.cgroups
def test_cleanup_stale_leaves_live_runs_alone(cgroups: CgroupManager) -> None:
    cgroups.create("alive", cpu=0.5, memory=None)
    CgroupManager("other").cleanup_stale()
    assert all(d.is_dir() for d in cgroups.run_directories())


def test_create_without_cgroups_says_why(tmp_path: Path) -> None:
    manager = CgroupManager("nowhere", root=tmp_path)  # an empty dir: no hierarchy mounted there
    if cgroup_version(tmp_path) is None and manager.version is None:
        assert manager.available() is not None
        with pytest.raises(SystemUnavailable, match="cannot set CPU/memory limits"):
            manager.create("x", cpu=0.5, memory=None)


@pytest.mark.slow
def test_duty_cycle_caps_a_busy_loop(tmp_path: Path) -> None:
    process = spawn("busy", BUSY, log_path=tmp_path / "busy.log")
    duty = DutyCycle(0.25, period_s=0.1)
    try:
        duty.add(process.pid)
        with duty:
            time.sleep(0.3)
            before, started = process_cpu_s(process.pid), time.monotonic()
            time.sleep(WINDOW_S)
            after = process_cpu_s(process.pid)
            used = ((after or 0) - (before or 0)) / (time.monotonic() - started)
        throttling = duty.throttling()
        state_after = _state(process.pid)
    finally:
        process.stop(grace_s=1)
    assert 0.05 < used <= 0.4, f"busy loop used {used:.3f} CPU under a 0.25 duty cycle"
    assert throttling.periods >= 20
    assert throttling.throttled_periods >= 0.8 * throttling.periods
    assert throttling.throttled_s > 0.5 * WINDOW_S * 0.75
    assert state_after != "T", "the duty cycle left its target stopped"


def test_duty_cycle_never_leaves_a_process_stopped(tmp_path: Path) -> None:
    process = spawn("sleeper", ["sleep", "30"], log_path=tmp_path / "sleep.log")
    duty = DutyCycle(0.05, period_s=0.5)
    try:
        duty.add(process.pid)
        duty.start()
        wait_until(
            lambda: _state(process.pid) == "T", timeout=3, interval=0.01, what="the target stopped"
        )
        duty.stop()  # while the target is stopped
        assert _state(process.pid) in ("S", "R")
    finally:
        duty.stop()
        process.stop(grace_s=1)
