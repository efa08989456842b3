"""A CPU cap without cgroups: stop and continue processes on a fixed cycle.

Where no cgroup is writable (not root, macOS, a container without
delegation), heisen approximates a CFS quota of `cpu` cores the way the
kernel enforces it, period by period: in each period of `period_s` the
targets run for `cpu * period_s`, then are held with SIGSTOP for the rest,
then continued with SIGCONT. A single-threaded busy loop then uses about
`cpu` of a core; like a quota, this caps from above and stretches any
critical section that straddles a stop across periods.

The statistics have the shape of `cpu.stat`, summed over targets as the sum
of one cgroup per target would be: each period counts once per target, a
period in which the targets were stopped counts as throttled, and the time
stopped is `throttled_s`. Targets are process groups when `process_groups` is
true (a replica and everything it forked), single pids otherwise.

Invariant: whatever happens to the thread (stop(), an exception, a target
that vanished), every target is sent SIGCONT before the thread ends, so no
process is left stopped by heisen.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from heisen.system._cgroups import Throttling


class DutyCycle:
    """Hold a set of processes to `cpu` of a core by SIGSTOP/SIGCONT each period."""

    def __init__(self, cpu: float, *, period_s: float = 0.1, process_groups: bool = True) -> None:
        if cpu <= 0:
            raise ValueError("a CPU cap must be more than 0")
        if not hasattr(signal, "SIGSTOP"):
            raise OSError("stopping processes needs POSIX signals")
        self.cpu = cpu
        self.period_s = period_s
        self.process_groups = process_groups
        self._targets: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._periods = 0
        self._throttled_periods = 0
        self._throttled_s = 0.0

    @property
    def run_ratio(self) -> float:
        """The share of each period the targets run (1.0: never stopped)."""
        return min(1.0, self.cpu)

    def add(self, pid: int) -> None:
        with self._lock:
            self._targets.add(pid)

    def discard(self, pid: int) -> None:
        with self._lock:
            self._targets.discard(pid)
        self._signal(pid, signal.SIGCONT)

    def targets(self) -> list[int]:
        with self._lock:
            return sorted(self._targets)

    def start(self) -> DutyCycle:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="heisen-dutycycle", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """End the cycle; every target is running again when this returns. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._continue_all()

    def throttling(self) -> Throttling:
        with self._lock:
            return Throttling(self._periods, self._throttled_periods, self._throttled_s)

    def __enter__(self) -> DutyCycle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the cycle ----------------------------------------------------------------

    def _signal(self, pid: int, signum: int) -> bool:
        try:
            if self.process_groups:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _continue_all(self) -> None:
        for pid in self.targets():
            self._signal(pid, signal.SIGCONT)

    def _run(self) -> None:
        run_s = self.run_ratio * self.period_s
        next_period = time.monotonic()
        try:
            while not self._stop.is_set():
                period_start = next_period
                next_period = period_start + self.period_s
                self._sleep_until(period_start + run_s)
                targets = self.targets()
                stopped: list[int] = []
                stopped_at = time.monotonic()
                if self.run_ratio < 1.0 and not self._stop.is_set():
                    stopped = [pid for pid in targets if self._signal(pid, signal.SIGSTOP)]
                    self._sleep_until(next_period)
                    for pid in stopped:
                        self._signal(pid, signal.SIGCONT)
                else:
                    self._sleep_until(next_period)
                held_s = time.monotonic() - stopped_at if stopped else 0.0
                with self._lock:
                    self._periods += len(targets)
                    self._throttled_periods += len(stopped)
                    self._throttled_s += held_s * len(stopped)
                now = time.monotonic()
                if now > next_period + self.period_s:
                    next_period = now  # fell behind (a loaded machine): do not try to catch up
        finally:
            self._continue_all()

    def _sleep_until(self, when: float) -> None:
        delay = when - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc), None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    with contextlib.suppress(ValueError, IndexError):
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")
    return None
