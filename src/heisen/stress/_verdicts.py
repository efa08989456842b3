"""The oracle after one trial: each invariant's verdict, as a plain dict for the manifest.

Probe invariants (`sql`, `redis`, `http`, `python`) ask the system; the two
that need what the load did look at the trial's records: `acknowledged`
(every acknowledged write must be persisted) and `history` (the requests
with `history:` specs, as invoke/completion operations, checked against a
model). The history of each trial is appended to a JSON-lines file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from heisen._schema._system import HistorySpec, Invariant
from heisen.oracle.checkers import Per, RateLimit
from heisen.oracle.pipeline_invariants import Verdict as InvariantVerdict
from heisen.oracle.probes import ProbeError
from heisen.pipeline import DependencyKind, Pipeline
from heisen.stress import _history
from heisen.stress._records import RequestRecord
from heisen.stress._render import RenderedRequest

Verdict = dict[str, Any]

HISTORY_BUDGET_S = 5.0


def probe(
    pipeline: Pipeline,
    system: Any,
    invariant: Invariant,
    context: Mapping[str, Any],
    load: Mapping[str, Any],
) -> Verdict:
    from heisen.oracle.pipeline_invariants import evaluate_probe

    return evaluate_probe(pipeline, system, invariant, context, load).to_dict()


def acknowledged(
    system: Any,
    invariant: Invariant,
    records: Sequence[RequestRecord],
    sent: Mapping[int, RenderedRequest],
) -> Verdict:
    """Acknowledged writes (status in `status:`, id from the response) that the database lost."""
    from heisen.oracle.pipeline_invariants import check_acknowledged

    ack = invariant.acknowledged
    assert ack is not None
    ids: list[Any] = []
    unknown = 0
    for record in records:
        rendered = sent.get(record.index)
        if rendered is None or rendered.name != ack.request:
            continue
        if record.sent_ns is None:
            continue  # never written: it certainly did not take effect
        if record.error is not None or (record.status is not None and record.status >= 500):
            unknown += 1
        elif record.status in ack.status:
            value = _history.field_of(_history.response_json(record), ack.id)
            if value is not None:
                ids.append(value)
    dsn = system.dependency_of_kind(DependencyKind.POSTGRES, ack.on)
    try:
        loss = check_acknowledged(dsn, ack.sql, ids, unknown)
    except ProbeError as exc:
        return InvariantVerdict.error(invariant.name, exc.fault, f"probe failed: {exc}").to_dict()
    message = (
        f"{loss['acknowledged']} acknowledged, {loss['persisted']} persisted, {loss['lost']} lost, "
        f"{loss['unknown']} unknown"
    )
    return {"name": invariant.name, "held": loss["lost"] == 0, "message": message, "value": loss}


def history_model(invariant: Invariant) -> Any:
    """The model `check` takes: a name, or the parameters of `history: {model: rate, ...}`."""
    model = invariant.history
    if isinstance(model, str):
        return model
    assert model is not None
    return RateLimit(limit=model.limit, window_s=model.window, f=model.f, per=Per(model.per))


def describe_model(invariant: Invariant) -> str:
    model = history_model(invariant)
    return model if isinstance(model, str) else str(model.describe())


def history(
    invariant: Invariant,
    records: Sequence[RequestRecord],
    sent: Mapping[int, RenderedRequest],
    specs: Mapping[str, HistorySpec],
    *,
    trial: int,
    path: Path,
) -> Verdict:
    """Append the trial's operations to `path` and check them against the invariant's model."""
    from heisen.oracle.checkers import check, render_timeline
    from heisen.oracle.history import Operation

    assert invariant.history is not None
    recorded = _history.operations(records, sent, specs)
    if not recorded:  # nothing this trial did can show the property, or its breach
        return {
            "name": invariant.name,
            "held": None,
            "message": "no request with history: ran in this trial: nothing to check",
            "value": {},
        }
    ops = _history.with_initial_values(recorded, specs)
    with path.open("a", encoding="utf-8") as handle:
        for op in ops:
            handle.write(json.dumps({**op, "trial": trial}, separators=(",", ":")) + "\n")
    operations = [Operation.from_dict({**op, "index": i}) for i, op in enumerate(ops)]
    result = check(operations, history_model(invariant), time_budget_s=HISTORY_BUDGET_S)
    if result.valid is None:
        return {
            "name": invariant.name,
            "held": None,
            "message": f"history check ran out of its {HISTORY_BUDGET_S:g} s budget (unknown)",
            "value": {},
        }
    if result.valid:
        return {
            "name": invariant.name,
            "held": True,
            "message": f"{len(operations)} operations consistent with {describe_model(invariant)}",
            "value": {},
        }
    violation = result.violations[0]
    key = f" on {violation.key}" if violation.key is not None else ""
    return {
        "name": invariant.name,
        "held": False,
        "message": f"{violation.kind}{key}: {violation.message}",
        "value": {
            "timeline": render_timeline(violation.operations),
            "operations": [op.to_dict() for op in violation.operations],
        },
    }
