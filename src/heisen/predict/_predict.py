"""`predict`: simulate the architecture, measure each anomaly site, score and rank the hotspots.

One call runs the swarm at the configured load (`agents` requests per cycle,
`cycles` repetitions), then four cheaper runs for sensitivity (burst and
latency x0.5 and x2, `sensitivity_cycles` each), then a search for the
smallest burst that reproduces the top hotspot in at least
`reproduce_threshold` of the cycles (doubling, then bisection to 5%). Every
run derives its random stream from `seed` and its own scenario, so the same
inputs give the same `Prediction`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from heisen import outputs
from heisen.errors import UsageError
from heisen.predict._model import Architecture, Incident
from heisen.predict._overrides import apply_overrides
from heisen.predict._score import (
    FACTORS,
    SCORE_FORMULA,
    Hotspot,
    Sensitivity,
    prior,
    rank,
    volatility,
    wilson,
)
from heisen.predict._sites import Site, SiteOutcome, SwarmResult
from heisen.predict._swarm import simulate, split_mix

MAX_AGENTS = 1_000_000
MAX_CYCLES = 1_000_000


@dataclass(frozen=True, slots=True)
class Prediction:
    """Ranked hotspots (highest volatility score first) and where stress should start.

    Each hotspot's `score` follows `score_formula` (see `heisen.predict._score`).
    `smallest_reproducing_load` is the smallest burst (same window) at which
    the top hotspot is predicted in at least `reproduce_threshold` of cycles,
    or None when no load up to 4x `agents` reproduces it.
    """

    hotspots: tuple[Hotspot, ...]
    smallest_reproducing_load: outputs.SmallestPredictedLoad | None
    load: outputs.PredictedLoad
    agents: int
    cycles: int
    seed: int
    reproduce_threshold: float
    elapsed_s: float
    score_formula: str = SCORE_FORMULA

    def as_outputs(self) -> outputs.PredictOutputs:
        """The `predict.outputs` section of the run manifest."""
        return outputs.PredictOutputs(
            hotspots=[hotspot.to_output() for hotspot in self.hotspots],
            smallest_reproducing_load=self.smallest_reproducing_load.model_copy()
            if self.smallest_reproducing_load
            else None,
            load=self.load.model_copy(),
            agents=self.agents,
            cycles=self.cycles,
            seed=self.seed,
            reproduce_threshold=self.reproduce_threshold,
            score_formula=self.score_formula,
            elapsed_s=round(self.elapsed_s, 3),
        )


def predict(
    architecture: Architecture,
    incidents: Iterable[Incident] = (),
    *,
    agents: int,
    cycles: int,
    seed: int,
    overrides: Mapping[str, Any] | None = None,
    sensitivity_cycles: int = 500,
    search_cycles: int = 200,
    reproduce_threshold: float = 0.5,
) -> Prediction:
    """Rank where races will happen in `architecture` under bursts of `agents` requests."""
    if not 1 <= agents <= MAX_AGENTS:
        raise UsageError(f"agents must be between 1 and {MAX_AGENTS:,} (got {agents})")
    if not 1 <= cycles <= MAX_CYCLES:
        raise UsageError(f"cycles must be between 1 and {MAX_CYCLES:,} (got {cycles})")
    if not 0 < reproduce_threshold <= 1:
        raise UsageError(f"reproduce_threshold must be in (0, 1] (got {reproduce_threshold})")
    started = time.perf_counter()
    incidents = tuple(incidents)
    arch = apply_overrides(architecture, overrides)
    main = simulate(arch, requests=agents, cycles=cycles, seed=seed)
    sites = tuple(outcome.site for outcome in main.outcomes)
    side = min(cycles, sensitivity_cycles)
    burst = {1.0: main} | {
        f: simulate(arch, requests=max(1, round(agents * f)), cycles=side, seed=seed, sites=sites)
        for f in (0.5, 2.0)
    }
    latency = {1.0: main} | {
        f: simulate(arch, requests=agents, cycles=side, seed=seed, latency_scale=f, sites=sites)
        for f in (0.5, 2.0)
    }
    hotspots = rank(
        _hotspot(arch, outcome, burst, latency, incidents, main) for outcome in main.outcomes
    )
    smallest = None
    if hotspots:
        top = next(site for site in sites if _matches(site, hotspots[0]))
        smallest = _smallest_load(
            arch, top, agents, min(cycles, search_cycles), seed, reproduce_threshold
        )
    return Prediction(
        hotspots=hotspots,
        smallest_reproducing_load=smallest,
        load=_load(arch, agents),
        agents=agents,
        cycles=cycles,
        seed=seed,
        reproduce_threshold=reproduce_threshold,
        elapsed_s=time.perf_counter() - started,
    )


def _matches(site: Site, hotspot: Hotspot) -> bool:
    return (site.anomaly, site.operation, site.resource, site.pattern) == (
        hotspot.anomaly,
        hotspot.operation,
        hotspot.resource,
        hotspot.key,
    )


def _load(arch: Architecture, requests: int) -> outputs.PredictedLoad:
    return outputs.PredictedLoad(
        requests=requests,
        window_ms=round(arch.workload.arrivals.span_s(requests) * 1e3, 3),
        per_operation=split_mix(arch.workload.mix, requests),
    )


def _hotspot(
    arch: Architecture,
    outcome: SiteOutcome,
    burst: Mapping[float, SwarmResult],
    latency: Mapping[float, SwarmResult],
    incidents: tuple[Incident, ...],
    main: SwarmResult,
) -> Hotspot:
    site = outcome.site
    sensitivity = Sensitivity(
        burst={f: _rate(burst[f], site) for f in FACTORS},
        latency={f: _rate(latency[f], site) for f in FACTORS},
    )
    dispersion = min(outcome.window_cv, 1.0) if sensitivity.reproduced() else 0.0
    prior_term = prior(incidents, site.boundary, site.anomaly)
    op = arch.operations[site.operation]
    return Hotspot(
        boundary=site.boundary,
        service=site.service,
        resource=site.resource,
        anomaly=site.anomaly,
        key=site.pattern,
        operation=site.operation,
        endpoint=op.endpoint.to_output() if op.endpoint else None,
        score=volatility(outcome.rate, sensitivity.index(), dispersion, prior_term),
        predicted_violation_rate=outcome.rate,
        ci95=wilson(outcome.violations, outcome.cycles),
        violations=outcome.violations,
        cycles=outcome.cycles,
        load=_load(arch, main.requests),
        sensitivity=sensitivity,
        dispersion=dispersion,
        prior=prior_term,
        window_ms=outcome.window_mean_s * 1e3,
        allowed_successes=site.limit
        if site.limit and site.anomaly.value == "check-then-act"
        else None,
        mean_wait_ms=round(outcome.mean_wait_s * 1e3, 3)
        if site.anomaly.value == "lock-timeout"
        else None,
    )


def _rate(result: SwarmResult, site: Site) -> float:
    found = result.by_site().get(site.id)
    return found.rate if found else 0.0


def _smallest_load(
    arch: Architecture, site: Site, agents: int, cycles: int, seed: int, threshold: float
) -> outputs.SmallestPredictedLoad | None:
    """Doubling from 2 requests up to 4x agents, then bisection to within 5%."""

    def reproduces(requests: int) -> float:
        return _rate(
            simulate(arch, requests=requests, cycles=cycles, seed=seed, sites=(site,)), site
        )

    low, high, rate = 1, 2, reproduces(2)
    while rate < threshold:
        if high >= 4 * agents:
            return None
        low, high = high, min(high * 2, 4 * agents)
        rate = reproduces(high)
    while high - low > max(1, high // 20):
        middle = (low + high) // 2
        middle_rate = reproduces(middle)
        if middle_rate >= threshold:
            high, rate = middle, middle_rate
        else:
            low = middle
    load = _load(arch, high)
    return outputs.SmallestPredictedLoad(
        requests=load.requests,
        window_ms=load.window_ms,
        per_operation=load.per_operation,
        anomaly=site.anomaly.value,
        boundary=site.boundary,
        operation=site.operation,
        predicted_violation_rate=round(rate, 6),
        cycles=cycles,
    )
