"""Run an ad hoc plan (`adhoc.AdHocPlan`) `repeat` times and summarize the records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heisen.stress._latency import LoadSummary, summarize
from heisen.stress._records import RequestRecord
from heisen.stress._request import Repeat
from heisen.stress._workers import ModelSpec, run_model

if TYPE_CHECKING:
    from heisen.stress.adhoc import AdHocPlan, AdHocRun


async def run_plan(plan: AdHocPlan) -> tuple[LoadSummary, list[AdHocRun]]:
    """Every repetition's records merged and summarized, and each repetition's own summary."""
    from heisen.stress.adhoc import AdHocRun

    merged: list[RequestRecord] = []
    runs: list[AdHocRun] = []
    for _ in range(plan.repeat):
        records, spread = await _run_once(plan)
        merged.extend(records)
        runs.append(AdHocRun(summarize(records), None if spread is None else spread * 1000))
    return summarize(merged), runs


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
