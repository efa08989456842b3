"""Anomalies found in one chunk of simulated cycles, from the effect time of every step.

The conditions are those of the `_swarm` docstring; each detector returns, per
cycle, whether the site's anomaly happened, and adds its window to the tally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from heisen.predict._model import Anomaly, Architecture, StepKind
from heisen.predict._sites import Site, SiteOutcome

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
TimeArray = NDArray[np.float32]


@dataclass
class Tally:
    """What one site's detector counted over the cycles seen so far."""

    violations: int = 0
    total: float = 0.0
    squares: float = 0.0
    count: int = 0
    wait: float = 0.0
    waits: int = 0

    def merge(self, other: Tally) -> None:
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
class Chunk:
    """Arrays of one chunk of cycles: per operation, the effect time of each step and the key groups."""

    rows: int
    effects: dict[str, dict[int, TimeArray]] = field(default_factory=dict)
    groups: dict[tuple[str, str], tuple[IntArray | None, int]] = field(default_factory=dict)
    holds: dict[str, TimeArray] = field(default_factory=dict)
    waits: dict[str, FloatArray] = field(default_factory=dict)


def detect(site: Site, architecture: Architecture, chunk: Chunk, tally: Tally) -> None:
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


def _check_then_act(site: Site, chunk: Chunk, tally: Tally) -> NDArray[np.bool_]:
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


def _lost_update(site: Site, chunk: Chunk, tally: Tally) -> NDArray[np.bool_]:
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
    site: Site, architecture: Architecture, chunk: Chunk, tally: Tally
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


def _reader_steps(site: Site, architecture: Architecture, chunk: Chunk) -> list[tuple[str, int]]:
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
    site: Site, architecture: Architecture, chunk: Chunk, tally: Tally
) -> NDArray[np.bool_]:
    wait = chunk.waits[site.operation]
    tally.window(chunk.holds[site.operation])
    tally.wait += float(wait.sum())
    tally.waits += wait.size
    timeout = architecture.operations[site.operation].steps[site.steps[0]].timeout_s
    assert timeout is not None
    timed_out: NDArray[np.bool_] = np.asarray((wait > timeout).any(axis=1), dtype=bool)
    return timed_out


def _negative_counter(site: Site, chunk: Chunk) -> NDArray[np.bool_]:
    effects = chunk.effects[site.operation][site.steps[0]]
    rows, count = effects.shape
    group, size = chunk.groups[(site.operation, site.pattern)]
    if group is None:
        return np.full(rows, count * site.amount > site.limit)
    cells = (np.arange(rows)[:, None] * size + group).ravel()
    totals = np.bincount(cells, minlength=rows * size).reshape(rows, size) * site.amount
    negative: NDArray[np.bool_] = np.asarray((totals > site.limit).any(axis=1), dtype=bool)
    return negative


def outcome(site: Site, tally: Tally, cycles: int) -> SiteOutcome:
    mean = tally.total / tally.count if tally.count else 0.0
    variance = max(tally.squares / tally.count - mean**2, 0.0) if tally.count else 0.0
    cv = math.sqrt(variance) / mean if mean > 0 else 0.0
    wait = tally.wait / tally.waits if tally.waits else 0.0
    return SiteOutcome(site, tally.violations, cycles, mean, cv, wait)
