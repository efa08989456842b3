"""Replicas of one service as local processes, kept alive like a Kubernetes ReplicaSet.

Each replica runs on its own loopback port (env `PORT`, plus what `env_for`
returns), under its own CPU/memory limits: a cgroup per replica
(`<name>-<index>`) where one is writable, else the SIGSTOP/SIGCONT duty cycle
(CPU only), else an error, as `limits_fallback` says.

A replica joins its cgroup *before* it runs any of its own code: it is
started through `/bin/sh -c`, which writes its own pid into each
`cgroup.procs` and then `exec`s the service. Attaching after `spawn()`
returns would leave a window in which a fast service imports, allocates
(charged to the parent's memory group under cgroup v1) and answers requests
without a quota; the shell costs about a millisecond.

One supervisor thread owns the replicas' lifecycle. It spawns every replica
(the first ones and all restarts): the kernel sends a child its
PR_SET_PDEATHSIG when the *thread* that forked it exits, so the spawner must
live as long as the children, and it stops them before it ends. Every
~100 ms it checks liveness and probes readiness (`health_path`); a replica
that dies is restarted after a backoff under policy `Always` (0.2 s,
doubling to a 5 s cap, reset once a replica has stayed ready for 10 s, as
the kubelet's CrashLoopBackOff does), on a new free port. Whenever the set of
ready endpoints changes, `on_ready_change` is called with it, from the
supervisor thread: a front proxy sends traffic only to ready replicas.
Other threads talk to the supervisor by queueing commands to it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TypeVar

from heisen.errors import SystemUnavailable
from heisen.system._cgroups import Cgroup, CgroupManager, Throttling
from heisen.system._dutycycle import DutyCycle, process_cpu_s
from heisen.system._health import ProbeResult, probe_once
from heisen.system._ports import LOOPBACK, free_port
from heisen.system._process import ManagedProcess, spawn
from heisen.system_protocol import Enforcement, ReplicaState

log = logging.getLogger(__name__)
T = TypeVar("T")
EnvFor = Callable[[int, int], Mapping[str, str]]
ReadyCallback = Callable[[list[tuple[str, int]]], None]

# $0 is "heisen-join"; the arguments are cgroup.procs files, then "--", then the command.
_JOIN_CGROUP = (
    'for f; do shift; [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; done; exec "$@"'
)


class RestartPolicy(StrEnum):
    ALWAYS = "Always"
    NEVER = "Never"


class LimitsFallback(StrEnum):
    DUTYCYCLE = "dutycycle"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before restart n (0-based): initial * factor**n, capped; reset after a ready spell."""

    initial_s: float = 0.2
    factor: float = 2.0
    cap_s: float = 5.0
    reset_after_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return min(self.cap_s, self.initial_s * self.factor ** min(attempt, 64))


ReplicaInfo = ReplicaState  # the name the platform has always used for it


class _Replica:
    """The supervisor's mutable record of one replica (touched under the set's lock)."""

    def __init__(self, index: int, cgroup: Cgroup | None) -> None:
        self.index = index
        self.cgroup = cgroup
        self.process: ManagedProcess | None = None
        self.port = 0
        self.ready = False
        self.ready_since: float | None = None
        self.failures = 0
        self.restarts = 0
        self.attempt = 0
        self.next_start_at: float | None = None
        self.last_probe: ProbeResult | None = None
        self.cpu_seen_s = 0.0  # /proc accounting when there is no cgroup
        self.cpu_done_s = 0.0

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


class ReplicaSet:
    """`replicas` copies of `argv`, each healthy on its own port, restarted when they die."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        replicas: int,
        cwd: Path | None,
        log_dir: Path,
        env_for: EnvFor,
        health_path: str = "/health",
        startup_deadline_s: float = 30.0,
        cpu: float | None = None,
        memory: int | None = None,
        cgroups: CgroupManager | None = None,
        limits_fallback: LimitsFallback | str = LimitsFallback.DUTYCYCLE,
        restart_policy: RestartPolicy | str = RestartPolicy.ALWAYS,
        backoff: Backoff = Backoff(),
        on_ready_change: ReadyCallback | None = None,
        poll_interval_s: float = 0.1,
        failure_threshold: int = 3,
        stop_grace_s: float = 3.0,
        health_tls: ssl.SSLContext | None = None,
    ) -> None:
        if replicas < 1:
            raise ValueError("a replica set needs at least one replica")
        if not argv:
            raise ValueError("a replica set needs a command")
        self.name = name
        self.argv = list(argv)
        self.replicas = replicas
        self.cwd = cwd
        self.log_dir = log_dir
        self.health_path = health_path
        self.health_tls = health_tls  # replicas that speak TLS are probed over it
        self.startup_deadline_s = startup_deadline_s
        self.cpu = cpu
        self.memory = memory
        self.limits_fallback = LimitsFallback(limits_fallback)
        self.restart_policy = RestartPolicy(restart_policy)
        self.backoff = backoff
        self.poll_interval_s = poll_interval_s
        self.failure_threshold = failure_threshold
        self.stop_grace_s = stop_grace_s
        self._env_for = env_for
        self._on_ready_change = on_ready_change
        self._cgroups = cgroups
        self._duty: DutyCycle | None = None
        self.enforcement = Enforcement("none", cpu, memory)
        self._replicas: list[_Replica] = []
        self._lock = threading.RLock()
        self._commands: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = (
            queue.SimpleQueue()
        )
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False  # True once start() has seen every replica ready
        self._closing = False
        self._stopped = False
        self._published: list[tuple[str, int]] = []  # nothing is ready before start()
        self._last_dead: dict[int, ManagedProcess] = {}  # the last exited process of each replica

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> ReplicaSet:
        """Start every replica and wait until all are healthy, or raise SystemUnavailable."""
        if self._thread is not None:
            raise RuntimeError(f"replica set {self.name} was already started")
        try:
            self._set_up_limits()
            self._thread = threading.Thread(
                target=self._supervise, name=f"heisen-replicas-{self.name}", daemon=True
            )
            self._thread.start()
            self._call(self._spawn_all)
            self._wait_all_ready()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Stop every replica, end the supervisor, remove the cgroups. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._shutdown, timeout_s=self.stop_grace_s + 30)
            thread.join(timeout=10)
        if not self._closing:  # the supervisor could not do it (not started, or crashed)
            self._shutdown()
        if self._duty is not None:
            self._duty.stop()
        for replica in self._replicas:
            if replica.cgroup is not None:
                replica.cgroup.remove()

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what callers ask -----------------------------------------------------------

    def ready_endpoints(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(LOOPBACK, r.port) for r in self._replicas if r.ready and r.alive()]

    def replicas_info(self) -> list[ReplicaInfo]:
        with self._lock:
            return [
                ReplicaInfo(
                    r.index,
                    r.process.pid if r.process else None,
                    r.port,
                    r.ready,
                    r.restarts,
                    r.alive(),
                )
                for r in self._replicas
            ]

    def cgroup_of(self, index: int) -> Cgroup | None:
        """Replica `index`'s cgroup, or None when it runs without one (chaos attaches CPU burners to it)."""
        with self._lock:
            return self._replicas[index].cgroup

    def kill(self, index: int, sig: int = signal.SIGKILL) -> int | None:
        """Send `sig` to replica `index` (its whole process group); returns the pid hit."""
        with self._lock:
            process = self._replicas[index].process
        if process is None or not process.alive():
            return None
        process.signal(sig)
        self._wake.set()
        return process.pid

    def throttling(self) -> Throttling:
        """CFS throttling summed over the replicas (or the duty cycle's equivalent)."""
        total = Throttling()
        if self._duty is not None:
            return self._duty.throttling()
        for replica in self._replicas:
            if replica.cgroup is not None:
                total = total + replica.cgroup.throttling()
        return total

    def cpu_usage_s(self) -> float:
        """CPU seconds used by all replicas so far, restarted ones included."""
        total = 0.0
        with self._lock:
            for replica in self._replicas:
                if replica.cgroup is not None:
                    total += replica.cgroup.cpu_usage_s()
                    continue
                live = (
                    process_cpu_s(replica.process.pid)
                    if replica.alive() and replica.process
                    else None
                )
                total += replica.cpu_done_s + (live if live is not None else replica.cpu_seen_s)
        return total

    def restart_all(self, env_for: EnvFor | None = None) -> None:
        """Rolling restart, one replica at a time: start the new one, wait until it is
        healthy, put it in the ready set, then stop the old one (maxSurge 1,
        maxUnavailable 0). `env_for`, when given, replaces the environment for good."""
        if env_for is not None:
            self._env_for = env_for
        for index in range(self.replicas):
            fresh = self._call(partial(self._spawn_replacement, index))
            problem = self._wait_ready(fresh, self.startup_deadline_s)
            if problem is not None:
                self._call(partial(self._stop_processes, [fresh]))
                raise SystemUnavailable(self._startup_message(fresh, problem, "restarting"))
            self._call(partial(self._swap, index, fresh))

    # -- set-up -----------------------------------------------------------------------

    def _set_up_limits(self) -> None:
        if self.cpu is None and self.memory is None:
            self._replicas = [_Replica(i, None) for i in range(self.replicas)]
            return
        reason = "no cgroup manager given" if self._cgroups is None else self._cgroups.available()
        if reason is None and self._cgroups is not None:
            self._replicas = [
                _Replica(
                    i, self._cgroups.create(f"{self.name}-{i}", cpu=self.cpu, memory=self.memory)
                )
                for i in range(self.replicas)
            ]
            self.enforcement = Enforcement("cgroup", self.cpu, self.memory)
            return
        if self.limits_fallback is LimitsFallback.ERROR:
            raise SystemUnavailable(
                f"{self.name}: cannot apply CPU/memory limits: {reason}. "
                "Run as root (or in a delegated cgroup), or allow the duty-cycle fallback."
            )
        self._replicas = [_Replica(i, None) for i in range(self.replicas)]
        if self.cpu is not None:
            self._duty = DutyCycle(self.cpu).start()
        self.enforcement = Enforcement("dutycycle" if self.cpu else "none", self.cpu, None, reason)

    # -- the supervisor thread --------------------------------------------------------

    def _call(self, function: Callable[[], T], timeout_s: float | None = 60.0) -> T:
        """Run `function` on the supervisor thread and return its result."""
        if threading.current_thread() is self._thread:
            return function()
        if self._thread is None or not self._thread.is_alive():
            raise SystemUnavailable(f"replica set {self.name}: the supervisor is not running")
        future: Future[object] = Future()
        self._commands.put((function, future))
        self._wake.set()
        return future.result(timeout=timeout_s)  # type: ignore[return-value]

    def _supervise(self) -> None:
        while True:
            while True:
                try:
                    function, future = self._commands.get_nowait()
                except queue.Empty:
                    break
                try:
                    future.set_result(function())
                except BaseException as exc:
                    future.set_exception(exc)
            if self._closing:
                return
            try:
                self._tick()
            except Exception:
                log.exception("replica set %s: supervisor check failed", self.name)
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    def _tick(self) -> None:
        now = time.monotonic()
        for replica in list(self._replicas):
            if replica.alive():
                self._check_ready(replica, now)
            else:
                self._handle_dead(replica, now)
        self._publish()

    def _check_ready(self, replica: _Replica, now: float) -> None:
        result = probe_once(
            LOOPBACK, replica.port, self.health_path, timeout_s=1.0, tls=self.health_tls
        )
        with self._lock:
            replica.last_probe = result
            if result.healthy:
                replica.failures = 0
                if not replica.ready:
                    replica.ready, replica.ready_since = True, now
            else:
                replica.failures += 1
                if replica.ready and replica.failures >= self.failure_threshold:
                    replica.ready, replica.ready_since = False, None
            if (
                replica.ready
                and replica.ready_since
                and now - replica.ready_since >= self.backoff.reset_after_s
            ):
                replica.attempt = 0
            if replica.cgroup is None and replica.process is not None:
                replica.cpu_seen_s = process_cpu_s(replica.process.pid) or replica.cpu_seen_s

    def _handle_dead(self, replica: _Replica, now: float) -> None:
        with self._lock:
            replica.ready, replica.ready_since = False, None
            if replica.process is not None:
                self._release(replica)
        if not self._started or self._closing or self.restart_policy is RestartPolicy.NEVER:
            return
        if replica.next_start_at is None:
            replica.next_start_at = now + self.backoff.delay(replica.attempt)
            replica.attempt += 1
        elif now >= replica.next_start_at:
            replica.next_start_at = None
            replica.restarts += 1
            self._spawn(replica)

    def _release(self, replica: _Replica) -> None:
        """Forget a dead replica's process (reaped), keeping its exit for the error message."""
        process = replica.process
        assert process is not None
        if self._duty is not None:
            self._duty.discard(process.pid)
        replica.cpu_done_s += replica.cpu_seen_s
        replica.cpu_seen_s = 0.0
        process.stop(grace_s=0)  # reaps, and kills anything left in its process group
        self._last_dead[replica.index] = process
        replica.process = None

    def _publish(self) -> None:
        ready = self.ready_endpoints()
        if ready == self._published:
            return
        self._published = ready
        if self._on_ready_change is not None:
            try:
                self._on_ready_change(list(ready))
            except Exception:
                log.exception("replica set %s: on_ready_change failed", self.name)

    # -- spawning (supervisor thread only) --------------------------------------------

    def _spawn_all(self) -> None:
        for replica in self._replicas:
            self._spawn(replica)

    def _spawn(self, replica: _Replica) -> None:
        port = free_port()
        env = {"PORT": str(port), **self._env_for(replica.index, port)}
        argv = self.argv
        if replica.cgroup is not None:
            files = [str(path) for path in replica.cgroup.procs_files()]
            argv = ["/bin/sh", "-c", _JOIN_CGROUP, "heisen-join", *files, "--", *argv]
        log_path = self.log_dir / f"{self.name}-{replica.index}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log_file:
            log_file.write(
                f"--- heisen: starting {self.name} replica {replica.index} on port {port} ---\n"
            )
        try:
            process = spawn(
                f"{self.name}-{replica.index}", argv, log_path=log_path, env=env, cwd=self.cwd
            )
        except OSError as exc:
            raise SystemUnavailable(
                f"{self.name} replica {replica.index}: cannot start {self.argv[0]!r}: {exc}"
            ) from exc
        if self._duty is not None:
            self._duty.add(process.pid)
        with self._lock:
            replica.process, replica.port = process, port
            replica.ready, replica.ready_since, replica.failures = False, None, 0

    def _spawn_replacement(self, index: int) -> _Replica:
        fresh = _Replica(index, self._replicas[index].cgroup)
        self._spawn(fresh)
        return fresh

    def _swap(self, index: int, fresh: _Replica) -> None:
        with self._lock:
            old = self._replicas[index]
            fresh.restarts, fresh.ready, fresh.ready_since = old.restarts, True, time.monotonic()
            fresh.cpu_done_s = old.cpu_done_s + old.cpu_seen_s
            self._replicas[index] = fresh
        self._publish()
        self._stop_processes([old])

    def _stop_processes(self, replicas: list[_Replica]) -> None:
        """SIGTERM them all, then wait for each within the grace period (SIGKILL after)."""
        live = [r for r in replicas if r.process is not None]
        for replica in live:
            assert replica.process is not None
            if replica.process.alive():
                replica.process.signal(signal.SIGCONT)
                replica.process.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        for replica in live:
            assert replica.process is not None
            if self._duty is not None:
                self._duty.discard(replica.process.pid)
            replica.process.stop(grace_s=max(0.0, deadline - time.monotonic()))
            with self._lock:
                replica.ready, replica.ready_since = False, None

    def _shutdown(self) -> None:
        self._closing = True
        self._stop_processes(self._replicas)
        self._publish()

    # -- waiting for readiness (caller's thread) ---------------------------------------

    def _wait_all_ready(self) -> None:
        deadline = time.monotonic() + self.startup_deadline_s
        while True:
            with self._lock:
                pending = [r for r in self._replicas if not r.ready]
                dead = [r for r in self._replicas if r.process is None or not r.process.alive()]
            if dead:
                replica = dead[0]
                raise SystemUnavailable(
                    self._startup_message(replica, self._exit_text(replica), "starting")
                )
            if not pending:
                return
            if time.monotonic() > deadline:
                replica = pending[0]
                probe = replica.last_probe.describe() if replica.last_probe else "no probe answered"
                problem = f"not healthy after {self.startup_deadline_s:g}s (last probe of {self.health_path}: {probe})"
                raise SystemUnavailable(self._startup_message(replica, problem, "starting"))
            time.sleep(0.05)

    def _wait_ready(self, replica: _Replica, deadline_s: float) -> str | None:
        """None once `replica` answers its health probe, else what went wrong."""
        deadline = time.monotonic() + deadline_s
        last: ProbeResult | None = None
        while time.monotonic() < deadline:
            if not replica.alive():
                return self._exit_text(replica)
            last = probe_once(
                LOOPBACK, replica.port, self.health_path, timeout_s=1.0, tls=self.health_tls
            )
            if last.healthy:
                return None
            time.sleep(0.05)
        probe = last.describe() if last else "no probe answered"
        return f"not healthy after {deadline_s:g}s (last probe of {self.health_path}: {probe})"

    def _exit_text(self, replica: _Replica) -> str:
        process = replica.process or self._last_dead.get(replica.index)
        code = process.returncode if process is not None else None
        if code is None:
            return "exited"
        return f"exited with code {code}" if code >= 0 else f"killed by signal {-code}"

    def _startup_message(self, replica: _Replica, problem: str, doing: str) -> str:
        process = replica.process or self._last_dead.get(replica.index)
        tail = process.tail(20) if process is not None else ""
        where = process.log_path if process is not None else self.log_dir
        lines = [
            f"{self.name} replica {replica.index} (port {replica.port}) failed while {doing}: {problem}."
        ]
        lines.append(f"Last lines of {where}:" if tail else f"Its log {where} is empty.")
        if tail:
            lines += ["  " + line for line in tail.splitlines()]
        return "\n".join(lines)
