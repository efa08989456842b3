"""Run an ad hoc plan (`adhoc.AdHocPlan`) `repeat` times and summarize the records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heisen.stress._latency import LoadSummary, summarize
from heisen.stress._protocol import PROBE_TIMEOUT_S, Negotiated, resolve
from heisen.stress._records import RequestRecord
from heisen.stress._request import Repeat
from heisen.stress._tls import tls_client
from heisen.stress._tls_check import check_tls_accepted
from heisen.stress._workers import ModelSpec, run_model

if TYPE_CHECKING:
    from heisen.stress.adhoc import AdHocPlan, AdHocRun


async def run_plan(plan: AdHocPlan) -> tuple[LoadSummary, list[AdHocRun], Negotiated | None]:
    """Every repetition's records merged and summarized, each repetition's own summary, and
    the protocol a burst spoke and why (None for sustained load)."""
    from heisen.stress.adhoc import AdHocRun

    chosen = None
    client = tls_client(plan.tls)
    if client is not None:
        await check_tls_accepted(plan.host, plan.port, client, flags=True)
    if plan.model == "burst":
        chosen = await resolve(
            plan.protocol,
            plan.host,
            plan.port,
            tls=tls_client(plan.tls, ("h2", "http/1.1")),
            timeout_s=PROBE_TIMEOUT_S,
        )
    merged: list[RequestRecord] = []
    runs: list[AdHocRun] = []
    for _ in range(plan.repeat):
        records, spread = await _run_once(plan, chosen)
        merged.extend(records)
        runs.append(
            AdHocRun(
                summarize(records),
                None if spread is None else spread * 1000,
                None if chosen is None else chosen.protocol,
            )
        )
    return summarize(merged), runs, chosen


async def _run_once(
    plan: AdHocPlan, chosen: Negotiated | None
) -> tuple[list[RequestRecord], float | None]:
    if chosen is not None:
        from heisen.stress._burst import run_burst

        burst = await run_burst(
            plan.host,
            plan.port,
            [plan.request] * plan.size,
            http2=chosen.protocol == "h2",
            tls=tls_client(plan.tls, (chosen.protocol,)),
        )
        return list(burst.records), burst.release_spread_s
    make = Repeat(plan.request)
    if plan.model == "rate":
        spec = ModelSpec(
            "inject",
            plan.host,
            plan.port,
            make,
            plan.duration_s,
            rate_per_s=plan.rate_per_s,
            tls=plan.tls,
        )
    else:
        spec = ModelSpec(
            "constant", plan.host, plan.port, make, plan.duration_s, copies=plan.size, tls=plan.tls
        )
    return await run_model(spec), None
