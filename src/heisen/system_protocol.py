"""The system under test as the phases see it: one protocol, whoever runs it.

The runner chooses the implementation (`heisen.system.SystemHandle` on this
machine; `heisen.system.KubeSystem` on a cluster) and hands it to each phase
as `ctx.system`. Phases use only what is written here, so a phase never knows
which one it drives: an operation an implementation cannot do raises
`UsageError` saying why (a service at a `url:` cannot be killed, a cluster
link has no toxics) rather than being left out.

`stop()` never swallows a failure: it goes on stopping everything else and
returns what did not stop, each as a `TeardownProblem` (the runner turns them
into a warning event and a manifest entry).
"""

from __future__ import annotations

import math
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from heisen._serialised import JsonObject
from heisen.schema import DependencyKind, Resources

ROUND_TRIP_BUCKETS = 4 * 27
"""Buckets of a `LatencyHistogram`: 2^(k/4) µs wide steps from 1 µs up to about 134 s."""


def round_trip_bucket(seconds: float) -> int:
    """The bucket of a round trip of `seconds`: k with 2^(k/4) µs <= it < 2^((k+1)/4) µs.

    Shorter than 1 µs goes to bucket 0; longer than the last bucket, to the last.
    """
    micros = seconds * 1e6
    if micros <= 1.0:
        return 0
    return min(int(4 * math.log2(micros)), ROUND_TRIP_BUCKETS - 1)


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Counts of round trips per log bucket (`round_trip_bucket`); subtract two readings.

    A round trip is what a link proxy saw between a request going in while none
    was outstanding and the first byte of the answer coming out: the
    dependency's service time as its client sees it, plus any toxic delay.
    Percentiles are the geometric middle of their bucket (within about 9%).
    """

    counts: tuple[int, ...] = ()

    @classmethod
    def of(cls, counts: Sequence[int]) -> LatencyHistogram:
        """From counts as stored (trailing empty buckets may be left out)."""
        values = [int(c) for c in counts[:ROUND_TRIP_BUCKETS]]
        while values and values[-1] == 0:
            values.pop()
        return cls(tuple(values))

    @property
    def count(self) -> int:
        return sum(self.counts)

    def __sub__(self, earlier: LatencyHistogram) -> LatencyHistogram:
        size = max(len(self.counts), len(earlier.counts))
        mine = self.counts + (0,) * (size - len(self.counts))
        theirs = earlier.counts + (0,) * (size - len(earlier.counts))
        return LatencyHistogram.of([max(0, a - b) for a, b in zip(mine, theirs, strict=True)])

    def percentile_ms(self, q: float) -> float | None:
        """The round trip in ms below which a share `q` (0..1) of them fell; None when empty."""
        total = self.count
        if total == 0:
            return None
        rank = max(1, math.ceil(min(max(q, 0.0), 1.0) * total))
        seen = 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return 2 ** ((bucket + 0.5) / 4) / 1e3
        return 2 ** ((len(self.counts) - 0.5) / 4) / 1e3  # pragma: no cover - rank <= total

    def to_json(self) -> list[int]:
        return list(self.counts)


@dataclass(frozen=True, slots=True)
class LinkTraffic:
    """Counters of one link; subtract two readings for what happened between them."""

    bytes: int
    toxic_chunks: int
    toxic_delay_s: float
    round_trips: LatencyHistogram = field(default_factory=LatencyHistogram)

    def __sub__(self, earlier: LinkTraffic) -> LinkTraffic:
        return LinkTraffic(
            self.bytes - earlier.bytes,
            self.toxic_chunks - earlier.toxic_chunks,
            self.toxic_delay_s - earlier.toxic_delay_s,
            self.round_trips - earlier.round_trips,
        )

    @property
    def mean_toxic_delay_ms(self) -> float | None:
        return self.toxic_delay_s * 1000 / self.toxic_chunks if self.toxic_chunks else None


@dataclass(frozen=True, slots=True)
class DependencyOperation:
    """One command, statement or call a link proxy's tap decoded on its way to a dependency.

    `start` is when its first byte reached the proxy, `end` when its answer was
    complete (None: the connection ended first), both in CLOCK_MONOTONIC
    seconds, the clock `time.monotonic()` reads in every process. `access`
    says what it does to `keys` (Redis keys, SQL tables, an HTTP path):
    `read`, `write`, `rmw` (an atomic read-modify-write: INCR, SET NX, a
    script, `x = x - 1`) or `none` (PING, BEGIN). `detail` holds what only
    one protocol has (see `heisen.system._tap`).
    """

    link: str
    protocol: str
    connection: int
    start: float
    end: float | None
    command: str
    keys: tuple[str, ...] = ()
    access: str = "none"
    text: str = ""
    error: str | None = None
    detail: JsonObject = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        return {
            "link": self.link,
            "protocol": self.protocol,
            "connection": self.connection,
            "start": self.start,
            "end": self.end,
            "command": self.command,
            "keys": list(self.keys),
            "access": self.access,
            "text": self.text,
            "error": self.error,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: JsonObject) -> DependencyOperation:
        end = data.get("end")
        error = data.get("error")
        return cls(
            link=str(data["link"]),
            protocol=str(data["protocol"]),
            connection=int(data["connection"]),
            start=float(data["start"]),
            end=None if end is None else float(end),
            command=str(data["command"]),
            keys=tuple(str(k) for k in data.get("keys") or ()),
            access=str(data.get("access", "none")),
            text=str(data.get("text", "")),
            error=None if error is None else str(error),
            detail=dict(data.get("detail") or {}),
        )


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One replica as last seen: where it listens, whether it is up, how often it came back.

    `pid` is None for a replica heisen cannot see the process of (a pod) or
    one not running now.
    """

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

    def __add__(self, other: CpuThrottling) -> CpuThrottling:
        return CpuThrottling(
            self.periods + other.periods,
            self.throttled_periods + other.throttled_periods,
            self.throttled_s + other.throttled_s,
        )


@dataclass(frozen=True, slots=True)
class Enforcement:
    """How the limits are enforced: `cgroup`, `dutycycle` (CPU only), `kubernetes` or `none`."""

    mechanism: str
    cpu: float | None
    memory: int | None
    reason: str | None = None  # why cgroups were not used, when they were not


@dataclass(frozen=True, slots=True)
class TeardownProblem:
    """Something that did not stop cleanly: what it was and what went wrong."""

    what: str
    error: str
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, what: str, exc: BaseException) -> TeardownProblem:
        """`what` failed to stop with `exc` (kept as `cause`, for a caller that must re-raise it)."""
        return cls(what, str(exc).strip() or type(exc).__name__, exc)

    def __str__(self) -> str:
        return f"{self.what}: {self.error}"


class ProcessGroup(Protocol):
    """A group a process can be put in, to share a replica's limits (a cgroup)."""

    def attach(self, pid: int) -> None: ...


@runtime_checkable
class Replicas(Protocol):
    """The copies of one service: listed, killed, measured."""

    @property
    def name(self) -> str: ...

    @property
    def enforcement(self) -> Enforcement: ...

    def replicas_info(self) -> list[ReplicaState]: ...

    def kill(self, index: int, sig: int = signal.SIGKILL) -> int | None:
        """Kill replica `index` (it comes back: restarted, or replaced); the pid hit, if known."""
        ...

    def cgroup_of(self, index: int) -> ProcessGroup | None:
        """Replica `index`'s group, or None when it runs without one."""
        ...

    def throttling(self) -> CpuThrottling | None:
        """CPU throttling summed over the replicas; None when the backend cannot read it."""
        ...

    def cpu_usage_s(self) -> float:
        """CPU seconds used by the replicas so far; UsageError when the backend cannot read it."""
        ...


@runtime_checkable
class System(Protocol):
    """Start, reach, disturb and stop the system a pipeline describes."""

    def start(self) -> None: ...

    def stop(self) -> list[TeardownProblem]:
        """Stop everything started; what failed to stop is returned, never swallowed.

        Idempotent: a second call (or one before start) returns [].
        """
        ...

    def kill(self) -> None:
        """The last resort when stop() hangs: end what was started without waiting on it."""
        ...

    def describe(self) -> JsonObject:
        """What runs where, for the manifest's `system:` (serialisation boundary)."""
        ...

    # endpoints
    def service_url(self, name: str | None = None) -> str: ...

    def service_address(self, name: str | None = None) -> tuple[str, int]: ...

    def dependency_address(self, name: str) -> str:
        """The DSN or URL that reaches dependency `name` directly (for probes and setup)."""
        ...

    def dependency_of_kind(self, kind: DependencyKind, name: str | None = None) -> str: ...

    # replicas and limits
    def replicas(self, service: str | None = None) -> Replicas: ...

    def replica_of_peers(self, service: str | None = None) -> dict[int, int]:
        """`{client local port: replica index}` of the connections served; {} when unknown."""
        ...

    def kill_replica(self, service: str, index: int, sig: int = signal.SIGKILL) -> int: ...

    def resources_of(self, service: str) -> Resources: ...

    def set_resources(self, service: str, resources: Resources) -> Replicas: ...

    def cgroups_unavailable_reason(self) -> str | None: ...

    # links, toxics and taps
    def links(self) -> list[str]: ...

    def link_proxy(self, link: str) -> str:
        """The name of link `link` (`a -> b` or `a->b`); UsageError when there is no such link."""
        ...

    def link_traffic(self, link: str) -> LinkTraffic: ...

    def tap_links(self) -> dict[str, str]:
        """Decode every link's protocol from now on (`{link: protocol}`): the replicas heisen
        started restart, so that their connections are new ones the tap reads from the start."""
        ...

    def untap_links(self) -> None:
        """Stop decoding on every link (at once, open connections included)."""
        ...

    def link_operations(self, link: str, since: int = 0) -> tuple[int, list[DependencyOperation]]:
        """(operations decoded on `link` so far, those after the first `since`)."""
        ...

    def link_tap_lost(self, link: str) -> dict[str, int]:
        """Connections of `link` whose tap stopped following them, by reason."""
        ...

    def add_toxic(self, link: str, toxic: Mapping[str, Any]) -> JsonObject:
        """Add a toxic (the proxy's JSON form: a serialisation boundary); returns it as stored."""
        ...

    def remove_toxic(self, link: str, name: str) -> None: ...

    def set_link_enabled(self, link: str, enabled: bool) -> None: ...

    def reset_faults(self) -> None: ...

    # dependencies
    def start_stub(self, dependency: str, root: Path) -> str: ...

    def stop_stub(self, dependency: str) -> None: ...

    def restart_dependency(self, name: str) -> None: ...
