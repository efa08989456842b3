"""The oracle after the load: one typed `Verdict` per invariant.

Probe invariants (`sql`, `redis`, `http`, `python`) ask the system; the two
that need what the load did look at its records: `acknowledged` (every
acknowledged write must be persisted) and `history` (the requests with
`history:` specs, as invoke/completion operations, checked against a model).
The history of each check is appended to a JSON-lines file.

`check_invariants` is the one place that judges them, for the trials of
stress, isolate and contain and for the chaos load alike: each invariant
after its `settle:` (counted from the end of the load), in pipeline order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from heisen.oracle import ProbeError, Verdict
from heisen.oracle.checkers import Per, RateLimit
from heisen.oracle.pipeline_invariants import (
    check_acknowledged,
    evaluate_probe,
    is_probe,
    probe_context,
)
from heisen.schema import DependencyKind, HistorySpec, Invariant, Pipeline
from heisen.stress import _history
from heisen.stress._records import RequestRecord
from heisen.stress._render import RenderedRequest
from heisen.system_protocol import System

# CPU seconds of the checker (not wall-clock time: see heisen.oracle.checkers' budget).
HISTORY_BUDGET_S = 5.0


def check_invariants(
    invariants: Sequence[Invariant],
    *,
    pipeline: Pipeline,
    system: System,
    records: Sequence[RequestRecord],
    sent: Mapping[int, RenderedRequest],
    trial: int,
    seed: int,
    run_dir: Path,
    history_path: Path,
    load: Mapping[str, Any] | None = None,
    probe_errors: Literal["verdict", "raise"] = "verdict",
) -> list[Verdict]:
    """Each invariant's verdict over `records`, waiting out its `settle:` from now (the load's end).

    `load`: the `load.*` variables probe expressions may read (None: they have none).
    `probe_errors`: whether an `acknowledged:` check whose query fails is an error
    verdict ("verdict") or raises its `ProbeError` ("raise").
    """
    context = probe_context(trial, seed, run_dir)
    specs = history_specs(pipeline)
    load_ended = time.monotonic()
    verdicts = []
    for invariant in invariants:
        settle = pipeline.scenario.settle if invariant.settle is None else invariant.settle
        time.sleep(max(0.0, load_ended + settle - time.monotonic()))
        if is_probe(invariant):
            verdict = evaluate_probe(pipeline, system, invariant, context, load)
        elif invariant.acknowledged is not None:
            try:
                verdict = acknowledged(system, invariant, records, sent)
            except ProbeError as exc:
                if probe_errors == "raise":
                    raise
                verdict = Verdict.error(invariant.name, exc.fault, f"probe failed: {exc}")
        else:
            verdict = history(invariant, records, sent, specs, trial=trial, path=history_path)
        verdicts.append(verdict)
    return verdicts


def history_specs(pipeline: Pipeline) -> dict[str, HistorySpec]:
    """The scenario's requests that record history, by name."""
    return {name: r.history for name, r in pipeline.scenario.requests.items() if r.history}


def acknowledged(
    system: System,
    invariant: Invariant,
    records: Sequence[RequestRecord],
    sent: Mapping[int, RenderedRequest],
) -> Verdict:
    """Acknowledged writes (status in `status:`, id from the response) that the database lost.

    Raises `ProbeError` when the database cannot be asked.
    """
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
    loss = check_acknowledged(dsn, ack.sql, ids, unknown)
    return Verdict(invariant.name, loss.lost == 0, loss.message, loss.to_dict())


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
        return Verdict(
            invariant.name, None, "no request with history: ran in this trial: nothing to check"
        )
    ops = _history.with_initial_values(recorded, specs)
    with path.open("a", encoding="utf-8") as handle:
        for op in ops:
            handle.write(json.dumps({**op, "trial": trial}, separators=(",", ":")) + "\n")
    operations = [Operation.from_dict({**op, "index": i}) for i, op in enumerate(ops)]
    result = check(operations, history_model(invariant), time_budget_s=HISTORY_BUDGET_S)
    if result.valid is None:
        return Verdict(
            invariant.name,
            None,
            f"history check ran out of its {HISTORY_BUDGET_S:g} s CPU budget (unknown)",
        )
    if result.valid:
        return Verdict(
            invariant.name,
            True,
            f"{len(operations)} operations consistent with {describe_model(invariant)}",
        )
    violation = result.violations[0]
    key = f" on {violation.key}" if violation.key is not None else ""
    return Verdict(
        invariant.name,
        False,
        f"{violation.kind}{key}: {violation.message}",
        {
            "timeline": render_timeline(violation.operations),
            "operations": [op.to_dict() for op in violation.operations],
        },
    )
