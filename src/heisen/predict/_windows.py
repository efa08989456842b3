"""How often an observed race window is hit at a load: a seeded simulation of its requests.

Each cycle sends `requests` copies of the candidate's request over `spread_s`
(evenly, one every spread / requests, as a sweep's round does; all at once
when the spread is 0, with a 1 ms scatter for the time the requests take to
be read). Every copy draws one observed sighting: the window opens `offset`
after its send and stays open `window`. The race is hit in a cycle when some
copy opens its window while another's is open: its check reads what the
other is about to change. The rate is the share of cycles with a hit.

A stale cache needs two kinds of copies: every other copy is the writer. It
is hit when a writer's database write and cache delete both fall inside a
reader's window, from its database read to its cache set: the reader then
puts back the value the writer replaced.

A lease is hit when a critical section outlives its lease while another copy
asks for the lock: its windows are the sections' overruns, drawn from a
lognormal fitted to the sections seen, so that a section that came close
counts. A retry without an idempotency key needs no concurrency: its rate is
the share of sends that retried.
"""

from __future__ import annotations

import math

import numpy as np

from heisen.predict._candidates import Candidate

BURST_SCATTER_S = 0.001
MIN_SIGMA = 0.25


def hit_rate(
    candidate: Candidate, *, requests: int, spread_s: float, cycles: int, seed: int
) -> float:
    """The share of `cycles` in which `requests` copies over `spread_s` hit the window."""
    if not candidate.sightings or candidate.attempts == 0:
        return 0.0
    seen = len(candidate.sightings) / candidate.attempts
    if candidate.anomaly == "double-effect":
        return min(1.0, seen)
    if requests < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    offsets, windows = _draws(candidate, rng, (cycles, requests))
    if spread_s > 0:
        sends = np.broadcast_to(np.arange(requests) * (spread_s / requests), (cycles, requests))
    else:
        sends = rng.uniform(0.0, BURST_SCATTER_S, (cycles, requests))
    present = rng.random((cycles, requests)) < seen  # sends that take the racy path at all
    if candidate.anomaly == "stale-cache":
        return _stale_rate(candidate, rng, sends, offsets, windows, present)
    opens = np.where(present, sends + offsets, np.inf)
    closes = np.where(present, opens + windows, -np.inf)
    return float(np.mean(_any_overlap(opens, closes)))


def _draws(
    candidate: Candidate, rng: np.random.Generator, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.array([s.offset_s for s in candidate.sightings])
    windows = np.array([s.window_s for s in candidate.sightings])
    picks = rng.integers(0, len(offsets), shape)
    if candidate.anomaly != "lease-expiry" or candidate.lease_s is None:
        return offsets[picks], windows[picks]
    sections = np.maximum(windows, 1e-6)
    median = float(np.median(sections))
    sigma = max(MIN_SIGMA, float(np.std(np.log(sections))))
    drawn = median * np.exp(sigma * rng.standard_normal(shape))
    overrun = np.maximum(0.0, drawn - candidate.lease_s)
    return offsets[picks] + candidate.lease_s, overrun


def _stale_rate(
    candidate: Candidate,
    rng: np.random.Generator,
    sends: np.ndarray,
    offsets: np.ndarray,
    windows: np.ndarray,
    present: np.ndarray,
) -> float:
    cycles, requests = sends.shape
    picks = rng.integers(0, len(candidate.sightings), (cycles, requests))
    pair_offsets = np.array([s.pair_offset_s for s in candidate.sightings])[picks]
    pair_windows = np.array([s.pair_window_s for s in candidate.sightings])[picks]
    readers, writers = slice(0, None, 2), slice(1, None, 2)
    read_open = np.where(present, sends + offsets, np.inf)[:, readers, None]
    read_close = read_open + windows[:, readers, None]
    write_open = (sends + pair_offsets)[:, None, writers]
    write_close = write_open + pair_windows[:, None, writers]
    inside = (read_open < write_open) & (write_close < read_close)
    return float(np.mean(np.any(inside, axis=(1, 2))))


def _any_overlap(opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Per cycle: whether some window opens strictly inside another one."""
    order = np.argsort(opens, axis=1)
    opens_sorted = np.take_along_axis(opens, order, axis=1)
    closes_sorted = np.take_along_axis(closes, order, axis=1)
    running_close = np.maximum.accumulate(closes_sorted, axis=1)
    hits: np.ndarray = np.any(opens_sorted[:, 1:] < running_close[:, :-1], axis=1)
    return hits


def window_figures_ms(candidate: Candidate) -> tuple[float, float, float]:
    """(median, p90, max) of the observed windows, in ms."""
    windows = sorted(s.window_s * 1e3 for s in candidate.sightings)
    if not windows:
        return 0.0, 0.0, 0.0
    p90 = windows[min(len(windows) - 1, math.ceil(0.9 * len(windows)) - 1)]
    return float(np.median(windows)), p90, windows[-1]
