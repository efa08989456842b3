"""Calibrate predict on what a run measured: refit the model, then predict the target where stress ran.

What is read (the run's manifest, stress's outputs):

* `latency_ms` and `status_codes`: the time of one request of the operation of
  predict's top hotspot (the one stress aims at). The requests the race is
  about are those that passed the check; refused ones (4xx) return early and
  are taken to be the fastest. With a share f of refused requests, the median
  of the others is the measured latency quantile at q = f + (1 - f) / 2,
  interpolated between the recorded percentiles (q = 0.5 when none was refused).
* `release_spread_ms.max`: how far apart a burst's requests were released.
* `per_invariant.<target>` (the main load, at its requests per trial) and
  `sweep.tried` (one point per burst size): the observed rates.

The refit (per operation and step, not one global factor):

* per link: stress's `link_latency_ms` holds the round trips heisen's link
  proxies measured on each `service->dependency` link during the trials
  (request in, first byte of the answer out: the dependency's time as the
  service saw it). A link named like a boundary of the architecture
  (`inventory->redis` is `inventory → redis`) fits every step on that
  boundary, in every operation, to a lognormal from its p50 and p90
  (`heisen.predict._calibrate.calibrate`). Links that name no boundary are
  left out. The boundaries so fitted are `model.links_ms`; when they are all
  of the operation's I/O steps, the measured time they leave (the service's
  own time between calls, `model.unattributed_ms`) is spread over its steps as
  CPU time, so the window between the check and the act keeps its share.
* the hotspot's operation: its measured time, minus its steps' CPU time and
  the medians of its steps fitted from links, is shared among its other I/O
  steps in proportion to their modelled medians; each step keeps the shape of
  its distribution (a lognormal its sigma, a uniform or normal its spread
  relative to its centre). Other operations keep their latencies (but for
  steps fitted from links).
* arrivals: a burst of N in the model is uniform over a window w, whose
  expected range is w (N - 1) / (N + 1). The release spread S measured at the
  main burst of M requests is taken to grow linearly with the burst (the
  client releases one request after another), so a burst of N spreads over
  S (N - 1) / (M - 1) and w = S (N + 1) / (M - 1). A main load that was not a
  burst (`inject`, `constant`: no release spread) arrives evenly over its
  steps' `during:`, as an open model at a steady rate does; a closed model is
  only approximated so.

The points, and how zeros are judged:

* each point is the swarm's rate at its load (`cycles` cycles), on the site of
  predict's top hotspot only: the main load with the architecture's traffic
  mix, a sweep's burst (one request) with the hotspot's operation alone;
* `ratio` is the geometric mean of predicted / observed over the points where
  both are above 0 (None when there is none);
* a point is within 2x when both are above 0 and 0.5 <= predicted / observed
  <= 2; when the observed rate is 0, when the model expects less than half a
  violating trial in the trials that ran (predicted x trials < 0.5); a point
  observed above 0 but predicted 0 is a miss;
* `within_2x` holds when every point is within 2x (false without points).

The smallest reproducing burst is the first of the sweep's sizes whose
predicted rate is at least 1/2 (the sweep's own rule: half of its trials),
beside the sweep's. They are within one step when their places in the sizes
differ by at most one; "none up to the max" counts as one place past the last.

Limits: heisen cannot read what a sweep's own `setup:` leaves (one ticket,
say), so its rounds start from the architecture's `workload.sweep.capacity`
when it gives one, else from `workload.capacity`; and a sweep's round is modelled as released like stress's main burst (or with
the architecture's arrivals when the main load was not a burst), or, with the
sweep's `spread:`, one request every spread / size.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

from heisen import outputs
from heisen.predict._architecture import normalize_boundary
from heisen.predict._calibrate import calibrate, quantile
from heisen.predict._model import Architecture, Arrivals, Latency, Operation, StepKind
from heisen.predict._sites import Site, find_sites
from heisen.predict._swarm import simulate, split_mix

REPRODUCES = 0.5  # the sweep's rule: at least half of the trials
_PERCENTILES = (("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))


@dataclass(frozen=True, slots=True)
class Observed:
    """One load that ran and how often it violated the target."""

    load: int
    trials: int
    violations: int
    source: str  # "stress" (the main load) or "sweep" (one burst size)

    @property
    def rate(self) -> float:
        return self.violations / self.trials if self.trials else 0.0


@dataclass(frozen=True, slots=True)
class Measured:
    """What calibration reads from stress's outputs (see the module docstring)."""

    target: str
    points: tuple[Observed, ...]
    latency_ms: float | None  # the estimated median of a request that passed the check
    passed_check: float | None  # the share of requests that were not refused
    spread_ms: float | None  # release spread of the main burst (None: not a burst)
    main_load: int
    sizes: tuple[int, ...]  # the sweep's burst sizes (empty: no sweep ran)
    smallest_observed: int | None
    sweep_spread_s: float | None = None  # the sweep's `spread:` (None: each round at once)
    main_during_s: float | None = None  # an open or closed main load's duration (None: a burst)
    # round trips per link as the proxies measured them: {link: {p50, p90, p99}} in ms
    links_ms: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def from_stress(
        cls,
        figures: outputs.StressOutputs,
        target: str,
        sizes: Sequence[int],
        sweep_spread_s: float | None = None,
        main_during_s: float | None = None,
    ) -> Measured:
        points: list[Observed] = []
        main_load = max(1, figures.requests // figures.trials) if figures.trials else 0
        mine = figures.per_invariant.get(target)
        if mine is not None and mine.trials and main_load:
            points.append(Observed(main_load, mine.trials, mine.violations, "stress"))
        sweep = (
            figures.sweep if figures.sweep is not None and figures.sweep.target == target else None
        )
        for step in sweep.tried if sweep is not None else []:
            if step.trials:
                points.append(Observed(step.requests, step.trials, step.violations, "sweep"))
        smallest = sweep.smallest_reproducing_load if sweep is not None else None
        latency, passed = _passed_check_latency(figures)
        spread = figures.release_spread_ms
        return cls(
            target=target,
            points=tuple(points),
            latency_ms=latency,
            passed_check=passed,
            spread_ms=float(spread.max) if spread is not None else None,
            main_load=main_load,
            sizes=tuple(sizes) if sweep is not None else (),
            smallest_observed=smallest.requests if smallest is not None else None,
            sweep_spread_s=sweep_spread_s,
            main_during_s=main_during_s,
            links_ms={
                link: {"p50": float(trips.p50), "p90": float(trips.p90), "p99": float(trips.p99)}
                for link, trips in figures.link_latency_ms.items()
                if trips.count and trips.p50 > 0
            },
        )


def _passed_check_latency(figures: outputs.StressOutputs) -> tuple[float | None, float | None]:
    """The median latency of the requests that were not refused (see the module docstring)."""
    latency = figures.latency_ms
    if not latency.p50:
        return None, None
    total = sum(figures.status_codes.values())
    refused = sum(n for code, n in figures.status_codes.items() if code.startswith("4"))
    share_refused = refused / total if total else 0.0
    if share_refused >= 1.0:
        return None, 0.0
    wanted = share_refused + (1 - share_refused) / 2
    known = [(q, float(getattr(latency, name))) for name, q in _PERCENTILES]
    known.append((1.0, float(latency.max or latency.p99)))
    for (q0, v0), (q1, v1) in pairwise(known):
        if q0 <= wanted <= q1:
            value = v0 + (v1 - v0) * (wanted - q0) / (q1 - q0)
            return round(value, 4), round(1 - share_refused, 4)
    return known[0][1], round(1 - share_refused, 4)


def refit(
    architecture: Architecture,
    operation_id: str,
    latency_ms: float,
    *,
    kept: Collection[str] = (),
) -> Architecture:
    """`architecture` with `operation_id`'s I/O steps scaled so the operation takes `latency_ms`.

    Steps on the boundaries `kept` (`shop → stock`: fitted from their links) keep their
    latency; the time left after them is what the other steps share."""
    op = architecture.operations[operation_id]
    cpu = sum(step.cpu_s for step in op.steps)
    medians = [_median(step.latency) for step in op.steps]
    held = [
        step.kind is not StepKind.CHECK and f"{op.service} → {step.target}" in kept
        for step in op.steps
    ]
    modelled = sum(m for m, h in zip(medians, held, strict=True) if not h)
    budget = latency_ms / 1e3 - cpu - sum(m for m, h in zip(medians, held, strict=True) if h)
    if budget <= 0 or not op.steps:
        return architecture
    if modelled > 0:
        factor = budget / modelled
        steps = tuple(
            replace(step, latency=_scaled(step.latency, factor))
            if medians[i] > 0 and not held[i]
            else step
            for i, step in enumerate(op.steps)
        )
    else:
        # Every I/O step is fitted from its link: what is left is the service's own time
        # between its calls, spread over the steps as CPU, so the window between the check
        # and the act keeps its share of it.
        share = budget / len(op.steps)
        steps = tuple(replace(step, cpu_s=step.cpu_s + share) for step in op.steps)
    operations = dict(architecture.operations)
    operations[operation_id] = replace(op, steps=steps)
    return replace(architecture, operations=operations)


def link_boundaries(
    architecture: Architecture, links_ms: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """The links named like a boundary of the architecture, by that boundary."""
    known = {
        f"{op.service} → {step.target}"
        for op in architecture.operations.values()
        for step in op.steps
        if step.kind is not StepKind.CHECK and step.target is not None
    }
    return {
        normalize_boundary(link): dict(percentiles)
        for link, percentiles in links_ms.items()
        if normalize_boundary(link) in known
    }


def unattributed_ms(op: Operation, latency_ms: float) -> float:
    """What of the operation's measured time neither its CPU nor its steps' medians take."""
    modelled = sum(step.cpu_s + _median(step.latency) for step in op.steps) * 1e3
    return round(max(0.0, latency_ms - modelled), 4)


def _median(latency: Latency) -> float:
    return quantile(latency, "p50") if latency.kind != "uniform" else (latency.a + latency.b) / 2


def _scaled(latency: Latency, factor: float) -> Latency:
    if latency.kind == "lognormal":
        return Latency("lognormal", latency.a * factor, latency.b)
    return Latency(latency.kind, latency.a * factor, latency.b * factor)


def step_medians_ms(op: Operation) -> dict[str, float]:
    """`2 call window: 250.0`: each I/O step's median in ms, by its place, kind and target."""
    return {
        f"{i + 1} {step.kind.value} {step.target}": round(_median(step.latency) * 1e3, 4)
        for i, step in enumerate(op.steps)
        if step.kind is not StepKind.CHECK and _median(step.latency) > 0
    }


def with_burst(architecture: Architecture, measured: Measured, requests: int) -> Architecture:
    """The architecture whose arrivals are a burst of `requests` spread as stress's were."""
    if measured.spread_ms is None:
        return architecture
    window_s = burst_window_s(measured.spread_ms, measured.main_load, requests)
    arrivals = Arrivals("burst", requests, window_s=window_s)
    return replace(architecture, workload=replace(architecture.workload, arrivals=arrivals))


def burst_window_s(spread_ms: float, main_load: int, requests: int) -> float:
    if main_load <= 1:
        return spread_ms / 1e3
    return spread_ms / 1e3 * (requests + 1) / (main_load - 1)


def target_site(
    architecture: Architecture, load: int, hotspot: outputs.Hotspot | None
) -> Site | None:
    """The site of predict's top hotspot (else the first site) at `load` requests."""
    sites = find_sites(architecture, split_mix(architecture.workload.mix, max(1, load)))
    for site in sites:
        if hotspot is not None and (site.anomaly.value, site.operation, site.pattern) == (
            hotspot.anomaly,
            hotspot.operation,
            hotspot.key,
        ):
            return site
    return sites[0] if sites else None


@dataclass(frozen=True, slots=True)
class Point:
    observed: Observed
    predicted: float

    @property
    def ratio(self) -> float | None:
        if self.predicted > 0 and self.observed.rate > 0:
            return self.predicted / self.observed.rate
        return None

    @property
    def within_2x(self) -> bool:
        ratio = self.ratio
        if ratio is not None:
            return 0.5 <= ratio <= 2.0
        if self.observed.rate == 0:
            return self.predicted * self.observed.trials < 0.5
        return False

    def to_output(self) -> outputs.CalibrationPoint:
        ratio = self.ratio
        return outputs.CalibrationPoint(
            phase="stress",
            load=self.observed.load,
            predicted=round(self.predicted, 4),
            observed=round(self.observed.rate, 4),
            ratio=round(ratio, 3) if ratio is not None else None,
            source=self.observed.source,
            trials=self.observed.trials,
            violations=self.observed.violations,
            within_2x=self.within_2x,
        )


def predict_points(
    architecture: Architecture,
    site: Site,
    measured: Measured,
    *,
    cycles: int,
    seed: int,
) -> tuple[list[Point], dict[int, float]]:
    """The swarm's rate at each observed load and at each of the sweep's sizes (the rates
    returned are the sweep's, by size). The main load runs the architecture's traffic mix; a
    sweep's burst sends one request, so its points run the hotspot's operation alone."""
    workload = architecture.workload
    alone = replace(
        architecture,
        workload=replace(
            workload,
            mix={site.operation: 1.0},
            capacity=workload.sweep_capacity or workload.capacity,
        ),
    )
    # The same site, with the sweep's capacity as its limit.
    swept_site = next((s for s in find_sites(alone, [site.operation]) if s.id == site.id), site)

    def rate(arch: Architecture, load: int, *, swept: bool = False) -> float:
        if swept and measured.sweep_spread_s is not None:
            arrivals = Arrivals("even", load, window_s=measured.sweep_spread_s)
            arch = replace(arch, workload=replace(arch.workload, arrivals=arrivals))
        elif not swept and measured.spread_ms is None and measured.main_during_s:
            arrivals = Arrivals("even", load, window_s=measured.main_during_s)
            arch = replace(arch, workload=replace(arch.workload, arrivals=arrivals))
        else:
            arch = with_burst(arch, measured, load)
        sites = (swept_site if swept else site,)
        result = simulate(arch, requests=load, cycles=cycles, seed=seed, sites=sites)
        found = result.by_site().get(site.id)
        return found.rate if found is not None else 0.0

    main = {p.load: rate(architecture, p.load) for p in measured.points if p.source == "stress"}
    sizes = {p.load for p in measured.points if p.source == "sweep"} | set(measured.sizes)
    swept = {load: rate(alone, load, swept=True) for load in sorted(sizes)}
    points = [Point(p, (main if p.source == "stress" else swept)[p.load]) for p in measured.points]
    return points, swept


def geometric_ratio(points: Sequence[Point]) -> float | None:
    ratios = [r for r in (p.ratio for p in points) if r is not None]
    if not ratios:
        return None
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def smallest_burst(measured: Measured, rates: Mapping[int, float]) -> tuple[int | None, bool]:
    """The first size predicted to reproduce, and whether it is within one step of the sweep's."""
    sizes = list(measured.sizes)
    predicted = next((n for n in sizes if rates.get(n, 0.0) >= REPRODUCES), None)

    def place(size: int | None) -> int:
        return sizes.index(size) if size in sizes else len(sizes)

    return predicted, abs(place(predicted) - place(measured.smallest_observed)) <= 1


def calibration_of(
    architecture: Architecture,
    stress: outputs.StressOutputs | None,
    *,
    target: str | None,
    sizes: Sequence[int],
    hotspot: outputs.Hotspot | None,
    cycles: int,
    seed: int,
    run: str,
    sweep_spread_s: float | None = None,
    main_during_s: float | None = None,
) -> tuple[outputs.Calibration, Architecture]:
    """predict's `calibration` on what stress measured, and the refitted architecture."""

    def missing(reason: str) -> tuple[outputs.Calibration, Architecture]:
        empty = outputs.Calibration(
            run=run, target=target, points=[], within_2x=False, reason=reason
        )
        return empty, architecture

    if target is None:
        return missing("the pipeline has no invariant to calibrate on")
    if stress is None:
        return missing("stress measured nothing to calibrate on")
    tried = [step.requests for step in stress.sweep.tried] if stress.sweep is not None else []
    measured = Measured.from_stress(
        stress, target, sizes if sizes else tried, sweep_spread_s, main_during_s
    )
    if not measured.points:
        return missing(f"stress recorded no rate for {target}")
    site = target_site(architecture, measured.main_load or measured.points[0].load, hotspot)
    if site is None:
        return missing("the architecture has no place where a race can happen")
    links = link_boundaries(architecture, measured.links_ms)
    linked = calibrate(architecture, links) if links else architecture
    fitted = linked
    if measured.latency_ms is not None:
        fitted = refit(linked, site.operation, measured.latency_ms, kept=links)
    points, rates = predict_points(fitted, site, measured, cycles=cycles, seed=seed)
    ratio = geometric_ratio(points)
    # The nested records (smallest burst, fitted model) are parsed from their manifest form,
    # so only `Calibration` and `CalibrationPoint` need to be public names of heisen.outputs.
    data: dict[str, object] = {
        "run": run,
        "target": target,
        "points": [p.to_output().to_manifest() for p in points],
        "ratio": round(ratio, 3) if ratio is not None else None,
        "within_2x": all(p.within_2x for p in points),
    }
    if measured.sizes:
        predicted, near = smallest_burst(measured, rates)
        data["smallest_reproducing_burst"] = {
            "predicted": predicted,
            "observed": measured.smallest_observed,
            "within_one_step": near,
            "sizes": list(measured.sizes),
        }
    op = fitted.operations[site.operation]
    model: dict[str, object] = {
        "operation": site.operation,
        "steps_ms": step_medians_ms(op),
        "latency_ms": measured.latency_ms,
        "passed_check": measured.passed_check,
        "arrival_window_ms": round(
            burst_window_s(measured.spread_ms, measured.main_load, measured.main_load) * 1e3, 4
        )
        if measured.spread_ms is not None
        else None,
        "release_spread_ms": measured.spread_ms,
    }
    if links:
        model["links_ms"] = links
        if measured.latency_ms is not None:
            model["unattributed_ms"] = unattributed_ms(
                linked.operations[site.operation], measured.latency_ms
            )
    data["model"] = model
    if not data["within_2x"]:
        data["reason"] = miss_reason(points)
    return outputs.Calibration.from_manifest(data), fitted


def miss_reason(points: Sequence[Point]) -> str:
    """`at 16 requests predicted 5% vs observed 100%; ...`: the points the model missed."""
    missed = [p for p in points if not p.within_2x]
    return "the model is not within 2x " + "; ".join(
        f"at {p.observed.load} requests ({p.observed.source}): predicted "
        f"{p.predicted:.1%} vs observed {p.observed.rate:.1%} of {p.observed.trials} trials"
        for p in missed
    )


def calibration_words(calibration: outputs.Calibration) -> str:
    """`; calibrated on no-oversell: within 2x at 4/4 loads (ratio 1.00), smallest burst 8 vs 8`."""
    points = calibration.points or []
    if not points:
        return f"; not calibrated: {calibration.reason}" if calibration.reason else ""
    held = sum(1 for p in points if p.within_2x)
    ratio = f", ratio {float(calibration.ratio):.2f}" if calibration.ratio is not None else ""
    words = f"; calibrated on {calibration.target}: within 2x at {held}/{len(points)} loads{ratio}"
    burst = calibration.smallest_reproducing_burst
    if burst is not None:
        words += (
            f", smallest burst predicted {burst.predicted or 'none'} vs observed "
            f"{burst.observed or 'none'}"
            f" ({'within' if burst.within_one_step else 'not within'} one step)"
        )
    if not calibration.within_2x:
        words += " (within_2x: false)"
    return words
