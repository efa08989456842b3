"""Experiments on the local backend: what each kind does (when: see `_rounds`).

Every experiment runs in its own worker thread, so experiments overlap as
their `start`s say; a round due after the load has ended is not injected
(the phase warns up front).

Within a round, `sequence` says how the targets are hit (LitmusChaos'
SEQUENCE): `serial` kills one replica, waits until the supervisor has a new
one ready, then the next; `parallel` kills them all at once.

Kinds (local backend):
- pod-delete: `percentage`% of the service's replicas (at least one) get
  SIGKILL (`force`) or SIGTERM then SIGKILL after `grace`, the whole process
  group, like a pod; the ReplicaSet restarts them (policy Always, backoff).
- container-kill: SIGKILL of the replica's main process only.
- pod-network-latency: a `latency` toxic on `link` for `duration`
  (`attributes` are the toxic's: `latency`/`jitter` ms, or a distribution;
  default 2000 ms as LitmusChaos' NETWORK_LATENCY).
- pod-network-loss: a `timeout` toxic (data stops, the connection hangs) on
  `loss`% of the link's connections (`attributes.loss`, default 100).
- reset-peer: a `reset_peer` toxic (`attributes.timeout` ms, `toxicity`).
- partition: the link refuses every connection for `duration`.
- pod-cpu-hog: `cores` burner processes per target replica for `duration`.
- dependency-restart: the embedded PostgreSQL/Redis is restarted.

Every fault goes through the `Faults` ledger, so the phase's rollback removes
whatever is still applied, whichever thread applied it.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from heisen._serialised import JsonObject
from heisen.chaos._cpu_hog import Burners
from heisen.chaos._faults import Faults
from heisen.chaos._rounds import Round
from heisen.chaos._timeline import Timeline
from heisen.schema import Experiment
from heisen.system_protocol import Replicas, System

READY_DEADLINE_S = 60.0


class LocalInjector:
    """Faults on what heisen started: replicas, link proxies, embedded dependencies."""

    def __init__(self, system: System, faults: Faults, timeline: Timeline, log_dir: Path) -> None:
        self.system = system
        self.faults = faults
        self.timeline = timeline
        self.log_dir = log_dir
        self.warnings: list[str] = []
        self._burners: list[Burners] = []
        self._lock = threading.Lock()
        self._actions: dict[str, Callable[[Round], list[str]]] = {
            "pod-delete": self._pod_delete,
            "container-kill": self._container_kill,
            "pod-network-latency": self._pod_network_latency,
            "pod-network-loss": self._pod_network_loss,
            "reset-peer": self._reset_peer,
            "partition": self._partition,
            "pod-cpu-hog": self._pod_cpu_hog,
            "dependency-restart": self._dependency_restart,
        }

    def check(self, experiment: Experiment) -> None:
        """Refuse, before anything starts, what heisen cannot do here."""
        if experiment.kind in ("pod-delete", "container-kill", "pod-cpu-hog"):
            self.system.replicas(experiment.service)
        elif experiment.kind == "dependency-restart":
            assert experiment.dependency is not None
            self.system.dependency_address(experiment.dependency)
        else:
            assert experiment.link is not None
            self.system.link_proxy(experiment.link)

    def inject(self, round_: Round) -> list[str]:
        """One round of its experiment; blocks while its fault lasts; returns its targets."""
        return self._actions[round_.experiment.kind](round_)

    def rollback(self) -> None:
        """The catch-all after the ledger closed: no toxic, every link enabled, no burner."""
        self.system.reset_faults()
        with self._lock:
            burners, self._burners = self._burners, []
        for burner in burners:
            burner.stop()

    # -- kills ------------------------------------------------------------------------

    def _pod_delete(self, r: Round) -> list[str]:
        return self._kill(r, process_only=False)

    def _container_kill(self, r: Round) -> list[str]:
        return self._kill(r, process_only=True)

    def _kill(self, r: Round, *, process_only: bool) -> list[str]:
        e = r.experiment
        replicas = self.system.replicas(e.service)
        infos = replicas.replicas_info()
        wanted = max(1, math.ceil(len(infos) * e.percentage / 100))
        chosen = sorted(r.rng.sample(range(len(infos)), min(wanted, len(infos))))
        groups = [chosen] if e.sequence == "parallel" else [[index] for index in chosen]
        targets: list[str] = []
        for group in groups:
            if r.stop.is_set():
                break
            began = self.timeline.now()
            killed: list[tuple[int, int]] = []
            for index in group:
                pid = self._kill_one(replicas, index, e, process_only)
                label = f"{e.kind} {replicas.name}-{index}" + (
                    f" (pid {pid})" if pid else " (not running)"
                )
                targets.append(f"{replicas.name}-{index}")
                self.timeline.add("inject", label, experiment=e.name)
                if pid is not None:
                    killed.append((index, pid))
            applied = self.faults.apply(
                f"{e.name}: {replicas.name} replicas restarting", lambda: None, lambda: None
            )
            try:
                for index, pid in killed:
                    self._wait_replaced(replicas, index, pid, r.stop)
            finally:
                if applied is not None:
                    self.faults.remove(applied[0])
            r.active(began, self.timeline.now())
        return targets

    def _kill_one(
        self, replicas: Replicas, index: int, e: Experiment, process_only: bool
    ) -> int | None:
        info = replicas.replicas_info()[index]
        if info.pid is None or not info.alive:
            return None
        if process_only:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
            return int(info.pid)
        if e.force:
            pid = replicas.kill(index, signal.SIGKILL)
            return int(pid) if pid is not None else None
        pid = replicas.kill(index, signal.SIGTERM)
        deadline = time.monotonic() + e.grace
        while time.monotonic() < deadline and _same_alive(replicas, index, pid):
            time.sleep(0.02)
        if pid is not None and _same_alive(replicas, index, pid):
            replicas.kill(index, signal.SIGKILL)
        return int(pid) if pid is not None else None

    def _wait_replaced(
        self, replicas: Replicas, index: int, old_pid: int, stop: threading.Event
    ) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline and not stop.is_set():
            info = replicas.replicas_info()[index]
            if info.pid not in (None, old_pid) and info.ready:
                self.timeline.add(
                    "recovered", f"{replicas.name}-{index} ready again (pid {info.pid})"
                )
                return
            time.sleep(0.05)

    # -- network ----------------------------------------------------------------------

    def _toxic(
        self,
        r: Round,
        kind: str,
        attributes: JsonObject,
        toxicity: float,
        stream: str,
    ) -> list[str]:
        e = r.experiment
        assert e.link is not None
        name = f"chaos-{e.name}-{r.number}"
        toxic = {
            "name": name,
            "type": kind,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        link = e.link
        return self._hold(
            r,
            f"{kind} toxic on {link}",
            lambda: self.system.add_toxic(link, toxic),
            lambda: self.system.remove_toxic(link, name),
            [link],
        )

    def _pod_network_latency(self, r: Round) -> list[str]:
        attributes = dict(r.experiment.attributes)
        toxicity = float(attributes.pop("toxicity", 1.0))
        stream = str(attributes.pop("stream", "downstream"))
        if not attributes:
            attributes = {"latency": 2000}
        return self._toxic(r, "latency", attributes, toxicity, stream)

    def _pod_network_loss(self, r: Round) -> list[str]:
        attributes = dict(r.experiment.attributes)
        loss = float(attributes.pop("loss", 100))
        stream = str(attributes.pop("stream", "upstream"))
        attributes.setdefault("timeout", 0)
        return self._toxic(r, "timeout", attributes, min(1.0, loss / 100), stream)

    def _reset_peer(self, r: Round) -> list[str]:
        attributes = dict(r.experiment.attributes)
        toxicity = float(attributes.pop("toxicity", 1.0))
        stream = str(attributes.pop("stream", "downstream"))
        attributes.setdefault("timeout", 0)
        return self._toxic(r, "reset_peer", attributes, toxicity, stream)

    def _partition(self, r: Round) -> list[str]:
        link = r.experiment.link
        assert link is not None
        return self._hold(
            r,
            f"partition of {link}",
            lambda: self.system.set_link_enabled(link, False),
            lambda: self.system.set_link_enabled(link, True),
            [link],
        )

    # -- CPU and dependencies -----------------------------------------------------------

    def _pod_cpu_hog(self, r: Round) -> list[str]:
        e = r.experiment
        replicas = self.system.replicas(e.service)
        infos = replicas.replicas_info()
        wanted = max(1, math.ceil(len(infos) * e.percentage / 100))
        chosen = sorted(r.rng.sample(range(len(infos)), min(wanted, len(infos))))
        burners: list[Burners] = []

        def start() -> None:
            for index in chosen:
                burner = Burners(f"{e.name}-{r.number}-{replicas.name}-{index}", self.log_dir)
                with self._lock:
                    self._burners.append(burner)
                burners.append(burner)
                pids = burner.start(
                    e.cores, cgroup=replicas.cgroup_of(index), beside_pid=infos[index].pid
                )
                if burner.mode != "cgroup":
                    warning = (
                        f"{e.name}: {replicas.name}-{index} has no cgroup; its {e.cores} burner(s) are "
                        "pinned to the CPU it last ran on (give the service resources: for a real "
                        "pod-cpu-hog)"
                    )
                    if warning not in self.warnings:
                        self.warnings.append(warning)
                self.timeline.add(
                    "burners",
                    f"{replicas.name}-{index}: pids {pids} ({burner.mode})",
                    experiment=e.name,
                )

        def undo() -> None:
            for burner in burners:
                burner.stop()

        targets = [f"{replicas.name}-{index}" for index in chosen]
        return self._hold(
            r, f"cpu hog ({e.cores} cores) on {', '.join(targets)}", start, undo, targets
        )

    def _dependency_restart(self, r: Round) -> list[str]:
        e = r.experiment
        assert e.dependency is not None
        began = self.timeline.now()
        self.timeline.add("inject", f"restart of {e.dependency}", experiment=e.name)
        applied = self.faults.apply(
            f"{e.name}: {e.dependency} restarting", lambda: None, lambda: None
        )
        try:
            self.system.restart_dependency(e.dependency)
        finally:
            if applied is not None:
                self.faults.remove(applied[0])
        self.timeline.add("recovered", f"{e.dependency} is back", experiment=e.name)
        r.active(began, self.timeline.now())
        return [e.dependency]

    # -- a fault held for `duration` -------------------------------------------------------

    def _hold(
        self,
        r: Round,
        label: str,
        do: Callable[[], object],
        undo: Callable[[], None],
        targets: list[str],
    ) -> list[str]:
        e = r.experiment
        full = f"{e.name}: {label}"
        began = self.timeline.now()
        applied = self.faults.apply(full, do, undo)
        if applied is None:
            return []
        self.timeline.add("inject", f"{label} for {e.duration:g}s", experiment=e.name)
        try:
            r.stop.wait(e.duration)
        finally:
            self.faults.remove(applied[0])
            r.active(began, self.timeline.now())
        return targets


def _same_alive(replicas: Replicas, index: int, pid: int | None) -> bool:
    info = replicas.replicas_info()[index]
    return pid is not None and info.pid == pid and info.alive
