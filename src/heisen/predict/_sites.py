"""Where an architecture can show an anomaly (a `Site`), and what the swarm found at each."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from heisen.predict._model import Anomaly, Architecture, Operation, StepKind


@dataclass(frozen=True, slots=True)
class Site:
    """One place where an anomaly can happen: an operation's steps on a shared key."""

    anomaly: Anomaly
    operation: str  # operation id, service.name
    service: str
    resource: str
    pattern: str
    steps: tuple[int, ...]  # the step indices the anomaly is defined on
    limit: int = 0  # check-then-act: sequential successes allowed; negative-counter: capacity
    amount: int = 1

    @property
    def boundary(self) -> str:
        return f"{self.service} → {self.resource}"

    @property
    def id(self) -> str:
        return f"{self.anomaly.value}:{self.operation}:{self.resource}:{self.pattern}"


def find_sites(architecture: Architecture, active: Iterable[str]) -> tuple[Site, ...]:
    """Every anomaly site of the operations in `active` (ids with traffic)."""
    ops = [architecture.operations[op_id] for op_id in active]
    capacity = architecture.workload.capacity
    sites: list[Site] = []
    for op in ops:
        sites += _counter_sites(op, capacity)
        sites += _lost_update_sites(op)
        sites += _stale_sites(op, architecture, ops)
        sites += _lock_sites(op)
    return tuple(dict.fromkeys(sites))


def _counter_sites(op: Operation, capacity: Mapping[str, int]) -> list[Site]:
    sites: list[Site] = []
    for w_index, write in enumerate(op.steps):
        if write.kind is not StepKind.WRITE or write.op != "decrement" or write.key not in capacity:
            continue
        assert write.key is not None and write.target is not None
        cap = capacity[write.key]
        guard = None
        for r_index, read in enumerate(op.steps[:w_index]):
            if (
                read.kind is not StepKind.READ
                or read.key != write.key
                or read.target != write.target
            ):
                continue
            for check in op.steps[r_index + 1 : w_index]:
                if (
                    check.check is not None
                    and check.check.name == read.alias
                    and check.check.operator in (">=", ">")
                ):
                    guard = (r_index, check)
        if guard is None:
            sites.append(
                Site(
                    Anomaly.NEGATIVE_COUNTER,
                    op.id,
                    op.service,
                    write.target,
                    write.key,
                    (w_index,),
                    cap,
                    write.amount,
                )
            )
            continue
        r_index, check = guard
        assert check.check is not None
        allowed = _sequential_successes(cap, check.check.operator, check.check.amount, write.amount)
        sites.append(
            Site(
                Anomaly.CHECK_THEN_ACT,
                op.id,
                op.service,
                write.target,
                write.key,
                (r_index, w_index),
                allowed,
                write.amount,
            )
        )
    return sites


def _sequential_successes(capacity: int, operator: str, threshold: int, amount: int) -> int:
    """How many checkouts pass `value OP threshold` when run one after another from `capacity`."""
    step = max(amount, 1)
    if operator == ">=":
        return 0 if capacity < threshold else (capacity - threshold) // step + 1
    return 0 if capacity <= threshold else math.ceil((capacity - threshold) / step)


def _lost_update_sites(op: Operation) -> list[Site]:
    sites: list[Site] = []
    for w_index, write in enumerate(op.steps):
        if write.kind is not StepKind.WRITE or write.op != "set":
            continue
        for r_index, read in enumerate(op.steps[:w_index]):
            if read.kind is StepKind.READ and read.key == write.key and read.target == write.target:
                assert write.key is not None and write.target is not None
                sites.append(
                    Site(
                        Anomaly.LOST_UPDATE,
                        op.id,
                        op.service,
                        write.target,
                        write.key,
                        (r_index, w_index),
                    )
                )
                break
    return sites


def _stale_sites(op: Operation, architecture: Architecture, ops: Sequence[Operation]) -> list[Site]:
    resources = architecture.resources
    sites: list[Site] = []
    truth: int | None = None
    for index, step in enumerate(op.steps):
        if step.kind is not StepKind.WRITE or step.target is None or step.target not in resources:
            continue
        kind = resources[step.target].kind
        if kind == "database":
            truth = index if truth is None else truth
        elif kind == "cache" and truth is not None:
            assert step.key is not None
            read_elsewhere = any(
                s.kind is StepKind.READ and s.target == step.target and s.key == step.key
                for other in ops
                for s in other.steps
            )
            if read_elsewhere:
                sites.append(
                    Site(
                        Anomaly.STALE_READ, op.id, op.service, step.target, step.key, (truth, index)
                    )
                )
    return sites


def _lock_sites(op: Operation) -> list[Site]:
    for index, step in enumerate(op.steps):
        if step.kind is StepKind.LOCK and step.timeout_s is not None:
            assert step.target is not None and step.key is not None
            return [Site(Anomaly.LOCK_TIMEOUT, op.id, op.service, step.target, step.key, (index,))]
    return []


@dataclass(frozen=True, slots=True)
class SiteOutcome:
    site: Site
    violations: int
    cycles: int
    window_mean_s: float  # mean length of the race window (read→act, write→cache update, lock hold)
    window_cv: float  # its coefficient of variation: the latency dispersion behind the race
    mean_wait_s: float = 0.0  # lock sites: mean wait to acquire

    @property
    def rate(self) -> float:
        return self.violations / self.cycles if self.cycles else 0.0


@dataclass(frozen=True, slots=True)
class SwarmResult:
    requests: int
    span_s: float
    cycles: int
    latency_scale: float
    seed: int
    outcomes: tuple[SiteOutcome, ...]
    elapsed_s: float

    def by_site(self) -> dict[str, SiteOutcome]:
        return {outcome.site.id: outcome for outcome in self.outcomes}
