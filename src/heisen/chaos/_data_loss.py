"""After the load: every pipeline invariant, and what was acknowledged but lost.

Probe invariants (sql/redis/http/python) are evaluated once against the
system after every fault is removed. `acknowledged:` invariants read every
record of the chaos load: a request of the named kind that answered one of
the acknowledged statuses is a write the service promised; its `id` must be
in the database (`check_acknowledged`). A request that failed or answered
5xx is `unknown` (it may or may not have taken effect), never `lost`.
`history:` invariants check the load's operations with the oracle's checker.

`data_loss` sums the acknowledged invariants: `{acknowledged, persisted,
lost, unknown}` (all zero, with `checked: false`, when the pipeline has no
`acknowledged:` invariant).
"""

from __future__ import annotations

import time
from typing import Any

from heisen.phase import PhaseContext
from heisen.pipeline import DependencyKind
from heisen.stress._records import RequestRecord
from heisen.stress._render import RequestFactory
from heisen.stress._verdicts import history


def check_invariants(
    ctx: PhaseContext, records: list[RequestRecord], factory: RequestFactory
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One verdict per invariant (`{name, held, message, value}`) and the data-loss totals."""
    from heisen.oracle.pipeline_invariants import evaluate_probe, is_probe

    pipeline = ctx.pipeline
    verdicts: list[dict[str, Any]] = []
    loss: dict[str, Any] = {
        "acknowledged": 0,
        "persisted": 0,
        "lost": 0,
        "unknown": 0,
        "checked": False,
    }
    context = {
        "trial": 1,
        "seed": ctx.seed,
        "run_dir": str(ctx.run_dir),
        "deps": {},
        "services": {},
    }
    load_ended = time.monotonic()  # the load stopped and every fault was rolled back
    chosen = ctx.pipeline.phases.chaos.invariants
    for invariant in pipeline.invariants:
        if chosen is not None and invariant.name not in chosen:
            continue
        settle = pipeline.scenario.settle if invariant.settle is None else invariant.settle
        time.sleep(max(0.0, load_ended + settle - time.monotonic()))
        if is_probe(invariant):
            verdicts.append(evaluate_probe(pipeline, ctx.system, invariant, context).to_dict())
        elif invariant.acknowledged is not None:
            verdict = _acknowledged(ctx, invariant, records, factory)
            verdicts.append(verdict)
            for key in ("acknowledged", "persisted", "lost", "unknown"):
                loss[key] += int(verdict["value"][key])
            loss["checked"] = True
            loss.setdefault("lost_ids", []).extend(verdict["value"].get("lost_ids", []))
        else:
            verdicts.append(_history(ctx, invariant, records, factory))
    return verdicts, loss


def _acknowledged(
    ctx: PhaseContext, invariant: Any, records: list[RequestRecord], factory: RequestFactory
) -> dict[str, Any]:
    from heisen.oracle.pipeline_invariants import check_acknowledged
    from heisen.stress._history import field_of, response_json

    ack = invariant.acknowledged
    ids: list[Any] = []
    unknown = 0
    for record in records:
        rendered = factory.sent.get(record.index)
        if rendered is None or rendered.name != ack.request:
            continue
        if record.sent_ns is None:
            continue  # never written: it certainly did not take effect
        if record.error is not None or (record.status is not None and record.status >= 500):
            unknown += 1
        elif record.status in ack.status:
            value = field_of(response_json(record), ack.id)
            if value is not None:
                ids.append(value)
    dsn = ctx.system.dependency_of_kind(DependencyKind.POSTGRES, ack.on)  # type: ignore[union-attr]
    loss = check_acknowledged(dsn, ack.sql, ids, unknown)
    message = (
        f"{loss['acknowledged']} acknowledged, {loss['persisted']} persisted, {loss['lost']} lost, "
        f"{loss['unknown']} unknown"
    )
    return {"name": invariant.name, "held": loss["lost"] == 0, "message": message, "value": loss}


def _history(
    ctx: PhaseContext, invariant: Any, records: list[RequestRecord], factory: RequestFactory
) -> dict[str, Any]:
    """The load's operations against the invariant's model, as every trial of stress checks them."""
    specs = {name: r.history for name, r in ctx.pipeline.scenario.requests.items() if r.history}
    path = ctx.run_dir / "chaos-history.jsonl"
    path.unlink(missing_ok=True)
    return history(invariant, records, factory.sent, specs, trial=1, path=path)
