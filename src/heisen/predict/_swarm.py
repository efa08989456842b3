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
  time, the others are uniform before it); `even` arrivals come one every
  window / count (a sweep's round spread evenly). Only when round-robin order
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

Extending it: a new anomaly is a new `Site` found by `_sites.find_sites`
and a detector in `_detect` over the effect-time arrays of a `Chunk`; a new
step kind needs its effect time in `_timeline`.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from heisen.predict._architecture import placeholders
from heisen.predict._detect import Chunk, FloatArray, IntArray, Tally, TimeArray, detect, outcome
from heisen.predict._model import Anomaly, Architecture, Latency, Operation, Step, StepKind
from heisen.predict._sites import Site, SwarmResult, find_sites

CHUNK_AGENTS = 1 << 19  # agents per chunk of cycles: bounds memory (2 MB per float32 array)
MAX_WORKERS = 4


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
    tallies = {site.id: Tally() for site in sites}
    for result in results:
        for site_id, tally in result.items():
            tallies[site_id].merge(tally)
    outcomes = tuple(outcome(site, tallies[site.id], cycles) for site in sites)
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

    def run(self, rows: int, stream: np.random.SeedSequence) -> dict[str, Tally]:
        rng = np.random.Generator(np.random.SFC64(stream))
        chunk = Chunk(rows)
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
        tallies = {site.id: Tally() for site in self.sites}
        for site in self.sites:
            detect(site, self.architecture, chunk, tallies[site.id])
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
    if arrivals.kind == "even":
        # Offsets i * window / count, one operation's share of them; already in arrival order.
        step = arrivals.window_s / max(count, 1)
        return np.tile(np.arange(count, dtype=np.float32) * np.float32(step), (rows, 1))
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
    chunk: Chunk,
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


def _resolve_locks(architecture: Architecture, counts: Mapping[str, int], chunk: Chunk) -> None:
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


def _lock_group(architecture: Architecture, chunk: Chunk, op_id: str, lock: int) -> IntArray:
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
