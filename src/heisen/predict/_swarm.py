"""The agent swarm: a seeded discrete-event simulation of the architecture, vectorized over cycles.

The model
---------
A *cycle* is one repetition of the workload: `requests` agents (virtual
users) arrive, each runs one operation once, and shared state starts fresh
(counters at their capacity, no locks held). Cycles are independent, so the
simulation lays them out as the rows of numpy arrays and computes every row at
once; agents of one operation are the columns.

Per cycle and operation:

* **Arrivals.** The traffic mix splits the `requests` into exact per-operation
  counts (`round(requests * weight)`). A burst spreads arrivals uniformly over
  its window; a rate is a Poisson stream (given the last arrival's Gamma
  time, the others are uniform before it). Only when round-robin order
  matters (per-replica locks) are they drawn in order, as normalized
  cumulative exponential spacings.
* **Replicas.** Requests of an operation go to the service's replicas
  round-robin in arrival order, from a random replica per cycle.
* **Keys.** Every `{placeholder}` takes one value per agent from its
  popularity (uniform over n, or zipf(s, n)), shared by all the agent's steps,
  so `inventory:{event}` and `event:{event}` name the same event.
* **Steps.** Each step takes `cpu * stretch + io` seconds, the I/O part drawn
  from the step's latency distribution and scaled by `latency_scale`. Its
  effect on shared state (the moment the server reads or writes) is at
  `start + cpu * stretch + io / 2`. Draws are lookups in a 65,536-point
  quantile table of the distribution (inverse-transform sampling). Steps after
  the last one an anomaly reads are not simulated: they cannot change it.
* **CPU.** A replica with a limit of L cores shares it among the requests in
  flight (processor sharing). The mean-field count in flight for an agent
  arriving at t is `m(t) = 1 + lam * min(t, S)`, lam the replica's arrival
  rate and S the mean sojourn solving `S = io + c * m / L` (infinite when the
  CPU is saturated, rho = lam * c / L >= 1, so concurrency keeps growing
  through the burst). A step's CPU cost stretches by `max(1, m(t) / L)`.
* **Locks.** `lock ... unlock` sections on the same (resource, key pattern,
  scope) are resolved jointly across operations per key (and per replica for
  `scope: replica`, an in-process lock): holders in request order, each
  acquiring at `max(request, previous release)`. That recurrence is a
  max-plus scan, computed with a running maximum. Later steps shift by the
  wait; a wait beyond `timeout` is a lock timeout (the schedule assumes the
  waiter still held the lock, an upper bound on contention).

Anomalies are conditions on those effect times, per key and cycle:

* **check-then-act**: `read v; check v >= a; ...; decrement by q` against a
  capacity C allows K sequential successes. A cycle oversells exactly when the
  (K+1)-th earliest reader still sees room, i.e. when some of the K earliest
  readers decrement after it reads: `max(dec of K earliest readers) >
  (K+1)-th earliest read`. (Readers before it all succeed, since fewer than K
  decrements can precede them.) One partial selection per key, no full sort.
* **lost-update**: `read k; ...; set k` where another agent's write to k falls
  strictly between an agent's read and its write.
* **stale-read**: an operation writes a database and later updates or
  invalidates a cache key; a read of that key by any agent inside the window
  `[database write, cache write]` returns the old value.
* **lock-timeout**: some wait for a lock exceeded its timeout.
* **negative-counter**: unguarded decrements of a counter (no check on it)
  sum past its capacity.

The violation rate of a site is the share of cycles with at least one anomaly.

Invariants
----------
* Same architecture, scenario and seed give bit-identical results: each
  chunk of cycles draws from its own SFC64 stream spawned from `(seed,
  requests, latency_scale)`, chunk sizes depend only on the scenario, and
  tallies merge in chunk order, so neither the machine nor the number of
  threads changes the output.
* Effect times within an agent increase with its step order; a lock holder's
  section never overlaps the next holder's for the same key.
* Key groups never mix: grouped searches offset each (cycle, key) group by
  more than the span of any time in the chunk.

Cost: O(cycles * requests * steps) array work; the only sorts are over lock
queues, lost-update writers and stale windows, and over readers when a
counter spans several keys.

Extending it: a new anomaly is a new `Site` subclass found by `find_sites`
and a `_detect_*` function over the effect-time arrays in `_Chunk`; a new
step kind needs its effect time in `_timeline`.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from heisen.predict._architecture import placeholders
from heisen.predict._model import Anomaly, Architecture, Latency, Operation, Step, StepKind

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
TimeArray = NDArray[np.float32]

CHUNK_AGENTS = 1 << 19  # agents per chunk of cycles: bounds memory (2 MB per float32 array)
MAX_WORKERS = 4


# --------------------------------------------------------------------------- sites


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


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- simulation


@dataclass
class _Tally:
    violations: int = 0
    total: float = 0.0
    squares: float = 0.0
    count: int = 0
    wait: float = 0.0
    waits: int = 0

    def merge(self, other: _Tally) -> None:
        self.violations += other.violations
        self.total += other.total
        self.squares += other.squares
        self.count += other.count
        self.wait += other.wait
        self.waits += other.waits

    def window(self, values: TimeArray) -> None:
        self.total += float(values.sum())
        self.squares += float(np.square(values).sum())
        self.count += values.size


@dataclass
class _Chunk:
    """Arrays of one chunk of cycles: per operation, the effect time of each step and the key groups."""

    rows: int
    effects: dict[str, dict[int, TimeArray]] = field(default_factory=dict)
    groups: dict[tuple[str, str], tuple[IntArray | None, int]] = field(default_factory=dict)
    holds: dict[str, TimeArray] = field(default_factory=dict)
    waits: dict[str, FloatArray] = field(default_factory=dict)


def simulate(
    architecture: Architecture,
    *,
    requests: int,
    cycles: int,
    seed: int,
    latency_scale: float = 1.0,
    sites: Sequence[Site] | None = None,
    workers: int | None = None,
) -> SwarmResult:
    """Run `cycles` independent repetitions of a workload of `requests` agents; count anomalies per site.

    Chunks of cycles run on up to `workers` threads (numpy releases the GIL);
    each chunk draws from its own stream spawned from the seed, and the
    tallies merge in chunk order, so the result does not depend on `workers`.
    """
    if requests < 1 or cycles < 1:
        raise ValueError("requests and cycles must be at least 1")
    started = time.perf_counter()
    counts = split_mix(architecture.workload.mix, requests)
    if sites is None:
        sites = find_sites(architecture, counts)
    span = architecture.workload.arrivals.span_s(requests)
    plan = _Plan(
        architecture,
        counts,
        tuple(sites),
        _stretch_model(architecture, counts, span, latency_scale),
        latency_scale,
    )
    entropy = [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, requests, round(latency_scale * 1e6)]
    rows_per_chunk = max(1, CHUNK_AGENTS // max(requests, 1))
    sizes = [min(rows_per_chunk, cycles - first) for first in range(0, cycles, rows_per_chunk)]
    streams = np.random.SeedSequence(entropy).spawn(len(sizes))
    threads = max(1, min(workers or os.cpu_count() or 1, MAX_WORKERS, len(sizes)))
    if threads == 1:
        results = [plan.run(rows, stream) for rows, stream in zip(sizes, streams, strict=True)]
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(plan.run, sizes, streams))
    tallies = {site.id: _Tally() for site in sites}
    for result in results:
        for site_id, tally in result.items():
            tallies[site_id].merge(tally)
    outcomes = tuple(_outcome(site, tallies[site.id], cycles) for site in sites)
    return SwarmResult(
        requests, span, cycles, latency_scale, seed, outcomes, time.perf_counter() - started
    )


@dataclass(frozen=True)
class _Plan:
    """What every chunk of one scenario shares: the operations to run, how far, and the sites to check."""

    architecture: Architecture
    counts: Mapping[str, int]
    sites: tuple[Site, ...]
    stretch: Mapping[str, _Stretch]
    scale: float

    @functools.cached_property
    def needed(self) -> dict[str, set[int]]:
        """Per operation, the steps whose effect time some site (or lock) reads; later steps are never simulated."""
        arch = self.architecture
        needed: dict[str, set[int]] = {op_id: set() for op_id in self.counts}
        for site in self.sites:
            needed.setdefault(site.operation, set()).update(site.steps)
            if site.anomaly is Anomaly.STALE_READ:
                for op_id in self.counts:
                    for index, step in enumerate(arch.operations[op_id].steps):
                        if (
                            step.kind is StepKind.READ
                            and step.target == site.resource
                            and step.key == site.pattern
                        ):
                            needed[op_id].add(index)
        for op_id in self.counts:
            for index, step in enumerate(arch.operations[op_id].steps):
                if step.kind in (StepKind.LOCK, StepKind.UNLOCK):
                    needed[op_id].add(index)
        return needed

    def run(self, rows: int, stream: np.random.SeedSequence) -> dict[str, _Tally]:
        rng = np.random.Generator(np.random.SFC64(stream))
        chunk = _Chunk(rows)
        for op_id, count in self.counts.items():
            if self.needed[op_id]:
                _timeline(
                    self.architecture,
                    self.architecture.operations[op_id],
                    count,
                    rows,
                    rng,
                    self.stretch,
                    self.scale,
                    chunk,
                    self.needed[op_id],
                )
        _resolve_locks(self.architecture, self.counts, chunk)
        tallies = {site.id: _Tally() for site in self.sites}
        for site in self.sites:
            _detect(site, self.architecture, chunk, tallies[site.id])
        return tallies


def split_mix(mix: Mapping[str, float], requests: int) -> dict[str, int]:
    """Exact per-operation counts of a cycle's requests, in mix order; operations with none are left out."""
    total = sum(max(weight, 0.0) for weight in mix.values())
    counts = {op_id: round(requests * max(weight, 0.0) / total) for op_id, weight in mix.items()}
    if not any(counts.values()):
        heaviest = max(mix, key=lambda op_id: mix[op_id])
        counts[heaviest] = requests
    return {op_id: count for op_id, count in counts.items() if count > 0}


@dataclass(frozen=True, slots=True)
class _Stretch:
    lam: float  # arrivals per second at one replica
    sojourn: float  # mean-field sojourn S (inf when saturated)
    cores: float

    def factor(self, arrival: TimeArray) -> TimeArray | float:
        if self.lam == 0:
            return max(1.0, 1.0 / self.cores)
        in_flight = np.minimum(arrival, np.float32(min(self.sojourn, 1e30)))
        in_flight *= np.float32(self.lam / self.cores)
        in_flight += np.float32(1.0 / self.cores)
        return np.maximum(in_flight, np.float32(1.0), out=in_flight)


def _stretch_model(
    architecture: Architecture, counts: Mapping[str, int], span: float, scale: float
) -> dict[str, _Stretch]:
    models: dict[str, _Stretch] = {}
    for service in architecture.services.values():
        ops = [
            (architecture.operations[op_id], n)
            for op_id, n in counts.items()
            if architecture.operations[op_id].service == service.name
        ]
        total = sum(n for _, n in ops)
        if total == 0:
            continue
        lam = total / max(span, 1e-9) / service.replicas
        io = sum(n * sum(step.latency.mean() for step in op.steps) for op, n in ops) / total * scale
        cpu = sum(n * sum(step.cpu_s for step in op.steps) for op, n in ops) / total
        rho = lam * cpu / service.cpu
        sojourn = math.inf
        if rho < 1:
            in_flight = (1 + lam * io) / (1 - rho)
            sojourn = io + cpu * in_flight / service.cpu
        models[service.name] = _Stretch(lam, sojourn, service.cpu)
    return models


def _arrivals(
    architecture: Architecture,
    count: int,
    rows: int,
    rng: np.random.Generator,
    share: float,
    ordered: bool,
) -> TimeArray:
    """Arrival times of one operation's agents; in arrival order only when `ordered` (round-robin matters)."""
    arrivals = architecture.workload.arrivals
    if arrivals.kind == "rate" and not ordered:
        # A Poisson stream's first `count` arrivals: given the last one at T ~ Gamma(count), the others are uniform before it.
        horizon = rng.standard_gamma(count, (rows, 1)).astype(np.float32) / np.float32(
            arrivals.per_s * share
        )
        times = rng.random((rows, count), dtype=np.float32)
        times *= horizon
        return times
    if arrivals.kind == "burst" and not ordered:
        times = rng.random((rows, count), dtype=np.float32)
        times *= np.float32(arrivals.window_s)
        return times
    width = count + 1 if arrivals.kind == "burst" else count
    times = np.cumsum(rng.standard_exponential((rows, width), dtype=np.float32), axis=1)
    if arrivals.kind == "burst":
        return times[:, :count] * (np.float32(arrivals.window_s) / times[:, count:])
    times *= np.float32(1.0 / (arrivals.per_s * share))
    return times


QUANTILES = 1 << 16  # resolution of the latency quantile tables


@functools.cache
def _standard_normal_quantiles() -> FloatArray:
    inverse = statistics.NormalDist().inv_cdf
    return np.array([inverse((i + 0.5) / QUANTILES) for i in range(QUANTILES)])


@functools.cache
def quantile_table(latency: Latency, scale: float) -> TimeArray:
    """The distribution's quantiles at (i + 0.5) / 65536, in seconds, scaled: inverse-transform sampling by lookup."""
    if latency.kind == "uniform":
        grid = (np.arange(QUANTILES) + 0.5) / QUANTILES
        table = latency.a + (latency.b - latency.a) * grid
    elif latency.kind == "normal":
        table = np.maximum(latency.a + latency.b * _standard_normal_quantiles(), 0.0)
    else:
        table = latency.a * np.exp(latency.b * _standard_normal_quantiles())
    return (table * scale).astype(np.float32)


def _sample_half(
    latency: Latency, shape: tuple[int, int], rng: np.random.Generator, scale: float
) -> TimeArray | float:
    """Half of each I/O latency draw, in seconds: a uniform index into the distribution's quantile table.

    Halves, because a step's effect sits in the middle of its round trip: the
    caller adds the draw once to reach the effect and once more to finish.

    A 65,536-point table gives every draw the exact distribution up to that
    resolution (tails clipped past the 1/131072 quantile) at a fraction of
    the cost of drawing normals and exponentiating them.
    """
    if latency.kind == "fixed" or (latency.kind != "uniform" and latency.b == 0):
        return latency.a * scale * 0.5
    return quantile_table(latency, scale * 0.5)[rng.integers(0, QUANTILES, shape, dtype=np.uint16)]


def _key_groups(
    architecture: Architecture,
    pattern: str,
    drawn: dict[str, IntArray],
    shape: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[IntArray | None, int]:
    """The key group of each agent for `pattern` (None when the pattern names a single key), and the group count."""
    group: IntArray | None = None
    size = 1
    for name in placeholders(pattern):
        space = architecture.workload.keys[name]
        if space.n == 1:
            continue
        if name not in drawn:
            if space.zipf_s is None:
                drawn[name] = rng.integers(0, space.n, shape)
            else:
                weights = np.arange(1, space.n + 1, dtype=np.float64) ** -space.zipf_s
                cdf = np.cumsum(weights) / weights.sum()
                drawn[name] = np.minimum(
                    np.searchsorted(cdf, rng.random(shape)), space.n - 1
                ).astype(np.int64)
        group = drawn[name] if group is None else group * space.n + drawn[name]
        size *= space.n
    return group, size


def _timeline(
    architecture: Architecture,
    op: Operation,
    count: int,
    rows: int,
    rng: np.random.Generator,
    stretch: Mapping[str, _Stretch],
    scale: float,
    chunk: _Chunk,
    needed: set[int],
) -> None:
    shape = (rows, count)
    total = sum(architecture.workload.mix.values())
    share = architecture.workload.mix[op.id] / total
    service = architecture.services[op.service]
    per_replica = any(step.kind is StepKind.LOCK and step.scope == "replica" for step in op.steps)
    clock = _arrivals(architecture, count, rows, rng, share, ordered=per_replica)
    factor = stretch[op.service].factor(clock)
    drawn: dict[str, IntArray] = {}
    effects: dict[int, TimeArray] = {}
    lock_at: int | None = None
    held = False
    solo = max(1.0, 1.0 / service.cpu)
    for index, step in enumerate(op.steps[: max(needed) + 1]):
        # Inside a lock section the other requests wait on the lock, not on the CPU.
        if step.cpu_s:
            clock += np.float32(step.cpu_s * solo) if held else np.float32(step.cpu_s) * factor
        half = _sample_half(step.latency, shape, rng, scale)
        if isinstance(half, float) and half == 0.0:
            effect = clock.copy() if index in needed else clock
        else:
            effect = clock + half
            clock = effect + half
        if index in needed:
            assert step.key is not None
            effects[index] = effect
            key = (op.id, step.key)
            if key not in chunk.groups:
                chunk.groups[key] = _key_groups(architecture, step.key, drawn, shape, rng)
        if step.kind is StepKind.LOCK:
            lock_at, held = index, True
        if step.kind is StepKind.UNLOCK and lock_at is not None:
            chunk.holds[op.id] = effects[index] - effects[lock_at]
            held = False
    if per_replica:
        offset = rng.integers(0, service.replicas, (rows, 1))
        chunk.groups[(op.id, "@replica")] = (
            (np.arange(count)[None, :] + offset) % service.replicas,
            service.replicas,
        )
    chunk.effects[op.id] = effects


def _lock_identity(step: Step) -> str:
    return f"{step.target}|{step.key}|{step.scope}"


def _resolve_locks(architecture: Architecture, counts: Mapping[str, int], chunk: _Chunk) -> None:
    """Serialize lock sections per key (and replica): acquire = max(request, previous release)."""
    queues: dict[str, list[tuple[str, int, int]]] = {}
    for op_id in counts:
        op = architecture.operations[op_id]
        for index, step in enumerate(op.steps):
            if step.kind is StepKind.LOCK:
                queues.setdefault(_lock_identity(step), []).append(
                    (op_id, index, op.steps.index(_unlock_of(op, index)))
                )
    for members in queues.values():
        requests = np.concatenate(
            [chunk.effects[op_id][lock] for op_id, lock, _ in members], axis=1
        )
        holds = np.concatenate([chunk.holds[op_id] for op_id, _, _ in members], axis=1)
        groups = np.concatenate(
            [_lock_group(architecture, chunk, op_id, lock) for op_id, lock, _ in members], axis=1
        )
        span = float(requests.max()) + float(holds.sum(axis=1).max()) + 1.0
        order = np.argsort(groups * (2 * span) + requests, axis=1, kind="stable")
        req = np.take_along_axis(requests, order, axis=1)
        hold = np.take_along_axis(holds, order, axis=1)
        grp = np.take_along_axis(groups, order, axis=1).astype(np.float64)
        done = np.cumsum(hold, axis=1)
        big = 4.0 * (span + float(done[:, -1].max()))
        release = done + np.maximum.accumulate(req - (done - hold) + grp * big, axis=1) - grp * big
        wait_sorted = np.maximum(release - hold - req, 0.0)
        wait = np.empty_like(wait_sorted)
        np.put_along_axis(wait, order, wait_sorted, axis=1)
        start = 0
        for op_id, lock, _unlock in members:
            width = chunk.effects[op_id][lock].shape[1]
            mine = wait[:, start : start + width]
            start += width
            chunk.waits[op_id] = mine
            for index in list(chunk.effects[op_id]):
                if index > lock:
                    chunk.effects[op_id][index] = chunk.effects[op_id][index] + mine


def _unlock_of(op: Operation, lock: int) -> Step:
    held = op.steps[lock]
    return next(
        s
        for s in op.steps[lock + 1 :]
        if s.kind is StepKind.UNLOCK and s.target == held.target and s.key == held.key
    )


def _lock_group(architecture: Architecture, chunk: _Chunk, op_id: str, lock: int) -> IntArray:
    step = architecture.operations[op_id].steps[lock]
    assert step.key is not None
    shape = chunk.effects[op_id][lock].shape
    group, _ = chunk.groups[(op_id, step.key)]
    base = (
        np.zeros(shape, dtype=np.int64)
        if group is None
        else np.broadcast_to(group, shape).astype(np.int64)
    )
    if step.scope == "replica":
        replica, replicas = chunk.groups[(op_id, "@replica")]
        assert replica is not None
        base = base * replicas + replica
    return base


# --------------------------------------------------------------------------- detection


def _detect(site: Site, architecture: Architecture, chunk: _Chunk, tally: _Tally) -> None:
    if site.operation not in chunk.effects:
        return
    if site.anomaly is Anomaly.CHECK_THEN_ACT:
        tally.violations += int(_check_then_act(site, chunk, tally).sum())
    elif site.anomaly is Anomaly.LOST_UPDATE:
        tally.violations += int(_lost_update(site, chunk, tally).sum())
    elif site.anomaly is Anomaly.STALE_READ:
        tally.violations += int(_stale_read(site, architecture, chunk, tally).sum())
    elif site.anomaly is Anomaly.LOCK_TIMEOUT:
        tally.violations += int(_lock_timeout(site, architecture, chunk, tally).sum())
    else:
        tally.violations += int(_negative_counter(site, chunk).sum())


def _check_then_act(site: Site, chunk: _Chunk, tally: _Tally) -> NDArray[np.bool_]:
    effects = chunk.effects[site.operation]
    reads, acts = effects[site.steps[0]], effects[site.steps[1]]
    tally.window(acts - reads)
    limit = site.limit
    rows, count = reads.shape
    if count <= limit:
        return np.zeros(rows, dtype=bool)
    group, size = chunk.groups[(site.operation, site.pattern)]
    if group is None:
        nearest = np.argpartition(reads, limit, axis=1)[:, : limit + 1]
        first_acts = np.take_along_axis(acts, nearest[:, :limit], axis=1)
        last_read = np.take_along_axis(reads, nearest[:, limit:], axis=1)[:, 0]
        if limit == 0:
            return np.zeros(rows, dtype=bool)
        oversold: NDArray[np.bool_] = first_acts.max(axis=1) > last_read
        return oversold
    span = float(acts.max()) + 1.0
    order = np.argsort(group * span + reads, axis=1)
    sorted_reads = np.take_along_axis(reads, order, axis=1).ravel()
    sorted_acts = np.take_along_axis(acts, order, axis=1).ravel()
    flat_group = (
        np.take_along_axis(group, order, axis=1) + np.arange(rows)[:, None] * size
    ).ravel()
    sizes = np.bincount(flat_group, minlength=rows * size)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    crowded = np.flatnonzero(sizes > limit)
    result = np.zeros(rows, dtype=bool)
    if crowded.size == 0 or limit == 0:
        return result
    bounds = np.empty(crowded.size * 2, dtype=np.int64)
    bounds[0::2] = starts[crowded]
    bounds[1::2] = starts[crowded] + limit
    first_max = np.maximum.reduceat(sorted_acts, bounds)[0::2]
    oversold = first_max > sorted_reads[starts[crowded] + limit]
    result[crowded[oversold] // size] = True
    return result


def _flat_keys(
    times: TimeArray, group: IntArray | None, size: int, span: float, rows: IntArray | None = None
) -> FloatArray:
    """Times as float64 keys that sort by (cycle, key group, time): groups never interleave."""
    if rows is None:
        rows = np.arange(times.shape[0])
    cell = rows[:, None] * size
    if group is not None:
        cell = cell + group
    keys: FloatArray = np.asarray(
        (cell * span + times.astype(np.float64)).ravel(), dtype=np.float64
    )
    return keys


def _lost_update(site: Site, chunk: _Chunk, tally: _Tally) -> NDArray[np.bool_]:
    effects = chunk.effects[site.operation]
    reads, writes = effects[site.steps[0]], effects[site.steps[1]]
    tally.window(writes - reads)
    group, size = chunk.groups[(site.operation, site.pattern)]
    span = float(writes.max()) + 1.0
    write_keys = _flat_keys(writes, group, size, span)
    ordered = np.sort(write_keys)
    between = np.searchsorted(ordered, write_keys, "left") - np.searchsorted(
        ordered, _flat_keys(reads, group, size, span), "right"
    )
    lost: NDArray[np.bool_] = np.asarray((between > 0).reshape(reads.shape).any(axis=1), dtype=bool)
    return lost


STALE_BLOCK = 256  # reader columns examined at once; rows already stale are dropped between blocks


def _stale_read(
    site: Site, architecture: Architecture, chunk: _Chunk, tally: _Tally
) -> NDArray[np.bool_]:
    effects = chunk.effects[site.operation]
    opened, closed = effects[site.steps[0]], effects[site.steps[1]]
    tally.window(closed - opened)
    group, size = chunk.groups[(site.operation, site.pattern)]
    readers = _reader_steps(site, architecture, chunk)
    span = (
        max(
            [float(closed.max())]
            + [float(chunk.effects[op_id][index].max()) for op_id, index in readers]
        )
        + 1.0
    )
    starts = np.sort(_flat_keys(opened, group, size, span))
    ends = np.sort(_flat_keys(closed, group, size, span))
    stale = np.zeros(chunk.rows, dtype=bool)
    for op_id, index in readers:
        reads = chunk.effects[op_id][index]
        reader_group, _ = chunk.groups[(op_id, site.pattern)]
        for first in range(0, reads.shape[1], STALE_BLOCK):
            pending = np.flatnonzero(~stale)
            if pending.size == 0:
                return stale
            block = reads[pending, first : first + STALE_BLOCK]
            block_group = (
                None if reader_group is None else reader_group[pending, first : first + STALE_BLOCK]
            )
            keys = _flat_keys(block, block_group, size, span, pending)
            inside = np.searchsorted(starts, keys, "right") - np.searchsorted(ends, keys, "right")
            stale[pending] = (inside > 0).reshape(block.shape).any(axis=1)
    return stale


def _reader_steps(site: Site, architecture: Architecture, chunk: _Chunk) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for op_id in chunk.effects:
        for index, step in enumerate(architecture.operations[op_id].steps):
            if (
                step.kind is StepKind.READ
                and step.target == site.resource
                and step.key == site.pattern
            ):
                found.append((op_id, index))
    return found


def _lock_timeout(
    site: Site, architecture: Architecture, chunk: _Chunk, tally: _Tally
) -> NDArray[np.bool_]:
    wait = chunk.waits[site.operation]
    tally.window(chunk.holds[site.operation])
    tally.wait += float(wait.sum())
    tally.waits += wait.size
    timeout = architecture.operations[site.operation].steps[site.steps[0]].timeout_s
    assert timeout is not None
    timed_out: NDArray[np.bool_] = np.asarray((wait > timeout).any(axis=1), dtype=bool)
    return timed_out


def _negative_counter(site: Site, chunk: _Chunk) -> NDArray[np.bool_]:
    effects = chunk.effects[site.operation][site.steps[0]]
    rows, count = effects.shape
    group, size = chunk.groups[(site.operation, site.pattern)]
    if group is None:
        return np.full(rows, count * site.amount > site.limit)
    cells = (np.arange(rows)[:, None] * size + group).ravel()
    totals = np.bincount(cells, minlength=rows * size).reshape(rows, size) * site.amount
    negative: NDArray[np.bool_] = np.asarray((totals > site.limit).any(axis=1), dtype=bool)
    return negative


def _outcome(site: Site, tally: _Tally, cycles: int) -> SiteOutcome:
    mean = tally.total / tally.count if tally.count else 0.0
    variance = max(tally.squares / tally.count - mean**2, 0.0) if tally.count else 0.0
    cv = math.sqrt(variance) / mean if mean > 0 else 0.0
    wait = tally.wait / tally.waits if tally.waits else 0.0
    return SiteOutcome(site, tally.violations, cycles, mean, cv, wait)
