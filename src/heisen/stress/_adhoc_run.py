"""Run an ad hoc plan (`adhoc.AdHocPlan`) `repeat` times and summarize the records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from heisen.stress._latency import summarize
from heisen.stress._records import RequestRecord
from heisen.stress._request import Repeat
from heisen.stress._workers import ModelSpec, run_model

if TYPE_CHECKING:
    from heisen.stress.adhoc import AdHocPlan


async def run_plan(plan: AdHocPlan) -> dict[str, Any]:
    """The merged summary of every repetition, each repetition's own, and the burst release spreads."""
    merged: list[RequestRecord] = []
    runs: list[dict[str, Any]] = []
    spreads: list[float] = []
    for _ in range(plan.repeat):
        records, spread = await _run_once(plan)
        merged.extend(records)
        one = summarize(records).to_dict()
        if spread is not None:
            spreads.append(spread * 1000)
            one["release_spread_ms"] = round(spread * 1000, 3)
        runs.append(one)
    result: dict[str, Any] = {
        "model": plan.describe(),
        "repeat": plan.repeat,
        **summarize(merged).to_dict(),
    }
    if plan.repeat > 1:
        # rps of merged runs would count the gaps between them: report the mean of each run's rps
        result["rps"] = round(sum(run["rps"] for run in runs) / len(runs), 1)
    if spreads:
        ordered = sorted(spreads)
        result["release_spread_ms"] = {
            "median": round(ordered[len(ordered) // 2], 3),
            "max": round(ordered[-1], 3),
        }
    result["runs"] = runs
    return result


async def _run_once(plan: AdHocPlan) -> tuple[list[RequestRecord], float | None]:
    if plan.model == "burst":
        from heisen.stress._burst import run_burst

        burst = await run_burst(plan.host, plan.port, [plan.request] * plan.size, http2=plan.http2)
        return list(burst.records), burst.release_spread_s
    make = Repeat(plan.request)
    if plan.model == "rate":
        spec = ModelSpec(
            "inject", plan.host, plan.port, make, plan.duration_s, rate_per_s=plan.rate_per_s
        )
    else:
        spec = ModelSpec("constant", plan.host, plan.port, make, plan.duration_s, copies=plan.size)
    return await run_model(spec), None
