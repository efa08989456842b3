"""The system under test as the phases see it: one protocol, whoever runs it.

The runner chooses the implementation (`heisen.system.SystemHandle` on this
machine; the Kubernetes backend on a cluster) and hands it to each phase as
`ctx.system`. Phases use only what is written here, so a phase never knows
which one it drives: an operation an implementation cannot do raises
`UsageError` saying why (a service at a `url:` cannot be killed, a cluster
link has no toxics) rather than being left out.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from heisen._schema._system import DependencyKind, Resources


@dataclass(frozen=True, slots=True)
class LinkTraffic:
    """Counters of one link; subtract two readings for what happened between them."""

    bytes: int
    toxic_chunks: int
    toxic_delay_s: float

    def __sub__(self, earlier: LinkTraffic) -> LinkTraffic:
        return LinkTraffic(
            self.bytes - earlier.bytes,
            self.toxic_chunks - earlier.toxic_chunks,
            self.toxic_delay_s - earlier.toxic_delay_s,
        )

    @property
    def mean_toxic_delay_ms(self) -> float | None:
        return self.toxic_delay_s * 1000 / self.toxic_chunks if self.toxic_chunks else None


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One replica as last seen: where it listens, whether it is up, how often it came back."""

    index: int
    pid: int | None
    port: int
    ready: bool
    restarts: int
    alive: bool


@dataclass(frozen=True, slots=True)
class CpuThrottling:
    """CFS bandwidth statistics: periods seen, periods throttled, time spent throttled."""

    periods: int = 0
    throttled_periods: int = 0
    throttled_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TeardownProblem:
    """Something that did not stop cleanly: what it was and what went wrong."""

    what: str
    error: str


@runtime_checkable
class Replicas(Protocol):
    """The copies of one service: listed, killed, measured."""

    def replicas_info(self) -> list[ReplicaState]: ...

    def kill(self, index: int, sig: int = signal.SIGKILL) -> int | None: ...

    def throttling(self) -> CpuThrottling | None:
        """CPU throttling summed over the replicas; None when the backend cannot read it."""
        ...

    def cpu_usage_s(self) -> float: ...


@runtime_checkable
class System(Protocol):
    """Start, reach, disturb and stop the system a pipeline describes."""

    def start(self) -> None: ...

    def stop(self) -> list[TeardownProblem]:
        """Stop everything started; what failed to stop is returned, never swallowed."""
        ...

    def describe(self) -> dict[str, Any]:
        """What runs where, for the manifest's `system:` (serialisation boundary)."""
        ...

    # endpoints
    def service_url(self, name: str | None = None) -> str: ...

    def service_address(self, name: str | None = None) -> tuple[str, int]: ...

    def dependency_address(self, name: str) -> str: ...

    def dependency_of_kind(self, kind: DependencyKind, name: str | None = None) -> str: ...

    # replicas and limits
    def replicas(self, service: str | None = None) -> Replicas: ...

    def replica_of_peers(self, service: str | None = None) -> dict[int, int]: ...

    def kill_replica(self, service: str, index: int, sig: int = signal.SIGKILL) -> int: ...

    def resources_of(self, service: str) -> Resources: ...

    def set_resources(self, service: str, resources: Resources) -> Replicas: ...

    def cgroups_unavailable_reason(self) -> str | None: ...

    # links, toxics and taps
    def links(self) -> list[str]: ...

    def link_traffic(self, link: str) -> LinkTraffic: ...

    def add_toxic(self, link: str, toxic: Mapping[str, Any]) -> dict[str, Any]: ...

    def remove_toxic(self, link: str, name: str) -> None: ...

    def set_link_enabled(self, link: str, enabled: bool) -> None: ...

    def reset_faults(self) -> None: ...

    # dependencies
    def start_stub(self, dependency: str, root: Path) -> str: ...

    def stop_stub(self, dependency: str) -> None: ...

    def restart_dependency(self, name: str) -> None: ...
