"""predict in observe mode: watch the running system, find its race candidates, rank them.

The candidates that nothing guards become the hotspots, ranked by score:
100 x their mean hit rate over the burst sizes 2, 4, ... up to `agents` (the
sweep's sizes when stress has a sweep), each size spread like the sweep's
rounds. A wider window is hit at smaller bursts and so scores higher; a
pattern seen in fewer sends is present in fewer copies. Guarded candidates
are listed under `protected` with what guards them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from heisen import outputs
from heisen.manifest import PhaseStatus
from heisen.phase import PhaseContext, PhaseResult
from heisen.predict._candidates import Candidate, find_candidates
from heisen.predict._catalog import unique_keys
from heisen.predict._observe import Observation, observe
from heisen.predict._windows import hit_rate, window_figures_ms
from heisen.schema import PredictSection
from heisen.seeds import derive

SCORE_FORMULA = "100 * mean(hit rate at each burst size of the ruler)"
DEFAULT_SPREAD_S = 0.0
MAX_SIMULATED_BURST = 256


def run_observed(ctx: PhaseContext, section: PredictSection) -> PhaseResult:
    started = time.monotonic()
    assert ctx.system is not None, "the runner starts the system for an observing predict"
    observation = observe(ctx, section.observation)
    unique = unique_keys(ctx.pipeline, ctx.system)
    candidates = find_candidates(observation, unique)
    sizes, spread_s = _ruler(ctx, section)
    seed = derive(ctx.seed, "predict")
    cycles = min(section.cycles, 2000)
    ranked: list[outputs.Hotspot] = []
    for candidate in candidates:
        if candidate.protected_by:
            continue
        rates = [
            hit_rate(candidate, requests=n, spread_s=spread_s, cycles=cycles, seed=seed + n)
            for n in sizes
        ]
        ranked.append(_hotspot(candidate, sizes, rates, spread_s))
    ranked.sort(key=lambda h: (-float(h.score), -float(h.window_ms)))
    protected = [_hotspot(c, [], [], spread_s) for c in candidates if c.protected_by]
    load = outputs.PredictedLoad(requests=sizes[-1], window_ms=round(spread_s * 1e3, 3))
    result = outputs.PredictOutputs(
        mode="observe",
        hotspots=ranked,
        protected=protected,
        observed=_observed(observation),
        smallest_reproducing_load=_smallest(ranked[0], spread_s) if ranked else None,
        load=load,
        agents=sizes[-1],
        cycles=cycles,
        seed=seed,
        score_formula=SCORE_FORMULA,
        elapsed_s=round(time.monotonic() - started, 3),
    )
    manifest_outputs = result.to_manifest()
    blind = _blind(observation)
    if blind:
        return PhaseResult.inconclusive(blind, manifest_outputs)
    return PhaseResult(PhaseStatus.PASSED, _summary(result, observation), manifest_outputs)


def _blind(observation: Observation) -> str | None:
    """Why the pass saw nothing it could judge, if it saw nothing."""
    if not observation.links:
        return (
            "the services reach no dependency through heisen's links: there is no traffic to read"
        )
    operations = sum(len(r.operations) for r in observation.requests)
    if operations == 0:
        lost = "; ".join(f"{reason} ({count})" for reason, count in observation.lost.items())
        why = f"the taps stopped: {lost}" if lost else "no request used a dependency"
        return f"no dependency operation was decoded during the sends ({why})"
    return None


def _ruler(ctx: PhaseContext, section: PredictSection) -> tuple[list[int], float]:
    """The burst sizes to predict at and their spread: the stress sweep's, else 2.. agents."""
    stress = ctx.pipeline.phases.stress
    sweep = stress.sweep if stress is not None else None
    if sweep is not None:
        return sweep.sizes(), sweep.spread or DEFAULT_SPREAD_S
    top = min(section.agents, MAX_SIMULATED_BURST)
    sizes = [2]
    while sizes[-1] * 2 <= top:
        sizes.append(sizes[-1] * 2)
    return sizes, DEFAULT_SPREAD_S


def _hotspot(
    candidate: Candidate, sizes: Sequence[int], rates: Sequence[float], spread_s: float
) -> outputs.Hotspot:
    median, p90, longest = window_figures_ms(candidate)
    at_top = rates[-1] if rates else 0.0
    smallest = next((n for n, rate in zip(sizes, rates, strict=True) if rate >= 0.5), None)
    middle = sorted(candidate.sightings, key=lambda s: s.window_s)[len(candidate.sightings) // 2]
    return outputs.Hotspot.from_manifest(
        {
            "boundary": f"{candidate.service} → {candidate.resource}",
            "service": candidate.service,
            "resource": candidate.resource,
            "anomaly": candidate.anomaly,
            "operation": candidate.request,
            "request": candidate.request,
            "endpoint": {"method": candidate.method, "path": candidate.path},
            **({"key": candidate.key} if candidate.key else {}),
            **({"table": candidate.table} if candidate.table else {}),
            **({"pair": candidate.pair} if candidate.pair else {}),
            "score": round(100 * statistics.fmean(rates), 2) if rates else 0.0,
            "predicted_violation_rate": round(at_top, 4),
            "load": {"requests": sizes[-1] if sizes else 0, "window_ms": round(spread_s * 1e3, 3)},
            "window_ms": round(median, 3),
            "window_spread_ms": {
                "median": round(median, 3),
                "p90": round(p90, 3),
                "max": round(longest, 3),
                "samples": len(candidate.sightings),
            },
            "seen": f"{len(candidate.sightings)}/{candidate.attempts}",
            "smallest_reproducing_burst": smallest,
            "burst_rates": {str(n): round(r, 4) for n, r in zip(sizes, rates, strict=True)},
            "evidence": list(middle.evidence),
            **({"protected": candidate.protected_by} if candidate.protected_by else {}),
        }
    )


def _smallest(top: outputs.Hotspot, spread_s: float) -> outputs.SmallestPredictedLoad | None:
    if top.smallest_reproducing_burst is None:
        return None
    return outputs.SmallestPredictedLoad(
        requests=top.smallest_reproducing_burst,
        window_ms=round(spread_s * 1e3, 3),
        anomaly=top.anomaly,
        boundary=top.boundary,
        operation=top.operation,
    )


def _observed(observation: Observation) -> outputs.Observed:
    requests: list[outputs.ObservedRequest] = []
    for name in dict.fromkeys(r.name for r in observation.requests):
        sends = observation.of(name)
        links = sorted({op.link for send in sends for op in send.operations})
        requests.append(
            outputs.ObservedRequest(
                request=name,
                endpoint=outputs.Endpoint(method=sends[0].method, path=sends[0].path),
                sends=len(sends),
                replicas=sorted({s.replica for s in sends if s.replica is not None}),
                operations={
                    link: int(
                        statistics.median(
                            sum(1 for op in send.operations if op.link == link) for send in sends
                        )
                    )
                    for link in links
                },
                latency_ms=round(statistics.median((s.end - s.start) * 1e3 for s in sends), 3),
            )
        )
    return outputs.Observed(
        links=dict(observation.links),
        requests=requests,
        background=len(observation.background),
        tap_lost=dict(observation.lost),
        elapsed_s=round(observation.elapsed_s, 3),
    )


def _summary(result: outputs.PredictOutputs, observation: Observation) -> str:
    sends = len(observation.requests)
    seen = f"observed {sends} sends of {len({r.name for r in observation.requests})} request(s)"
    if observation.lost:
        unread = sum(observation.lost.values())
        reasons = "; ".join(sorted(observation.lost))
        seen += f" (the taps could not read {unread} connection(s): {reasons})"
    guarded = f"{len(result.protected)} protected" if result.protected else "none protected"
    if not result.hotspots:
        return f"{seen}: no race candidate unguarded ({guarded})"
    top = result.hotspots[0]
    where = top.key or top.table or top.resource
    burst = (
        f", hit in half the bursts from {top.smallest_reproducing_burst} requests"
        if top.smallest_reproducing_burst
        else ""
    )
    return (
        f"{seen}: top hotspot {top.anomaly} on {where} in {top.request} "
        f"(window {float(top.window_ms):.1f} ms, seen {top.seen}{burst}); "
        f"{len(result.hotspots)} hotspot(s), {guarded}"
    )
