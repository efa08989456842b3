"""History checkers: is a recorded history consistent with a sequential model?

``check(history, model)`` partitions the calls by ``key`` (P-compositionality:
a history of independent keys is linearizable iff each key's sub-history
is), checks each key with its model's checker, shrinks each violation to a
minimal sub-history, and returns a :class:`CheckResult`: ``valid`` is True,
False, or None (unknown) when the time or step budget ran out before every
key was decided. A violation found on one key is reported even if another
key stayed unknown.

Models: ``register`` and ``cas-register`` (linearizability, :mod:`.register`),
``counter`` (:mod:`.counter`), ``set`` (:mod:`.set_model`) and ``rate`` (at
most N ok ``f`` per key, or per key and replica, in any window W:
:mod:`.rate`). ``rate`` takes parameters: pass a :class:`RateLimit` as the
model, ``check(history, RateLimit(limit=5, window_s=1.0, f="acquire"))``.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Sequence
from typing import Any

from heisen.errors import UsageError
from heisen.oracle.checkers import counter, rate, register, set_model
from heisen.oracle.checkers._budget import Budget
from heisen.oracle.checkers._result import CheckResult, CheckStats, Model, Violation
from heisen.oracle.checkers.rate import Per, RateLimit
from heisen.oracle.checkers.register import KeyFinding
from heisen.oracle.checkers.timeline import render_timeline, timeline_data
from heisen.oracle.history import Call, HistoryError, Operation, operations_of, pair_calls

__all__ = [
    "CheckResult",
    "CheckStats",
    "Model",
    "Per",
    "RateLimit",
    "Violation",
    "check",
    "render_timeline",
    "resolve_model",
    "timeline_data",
]

MAX_VIOLATIONS = 50


def resolve_model(name: str | Model | RateLimit) -> Model:
    """The :class:`Model` called ``name``; :class:`UsageError` with a suggestion otherwise."""
    if isinstance(name, RateLimit):
        return Model.RATE
    if isinstance(name, Model):
        return name
    try:
        return Model(name)
    except ValueError:
        names = [model.value for model in Model]
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown model {name!r} (models: {', '.join(names)}).{hint}") from None


def _validate(calls: Sequence[Call], model: Model) -> None:
    if model is Model.RATE:
        return  # rate.resolve checks its own operations
    for call in calls:
        if model in (Model.REGISTER, Model.CAS_REGISTER):
            problem = register.validate(call, cas=model is Model.CAS_REGISTER)
        elif model is Model.COUNTER:
            problem = counter.validate(call)
        else:
            problem = set_model.validate(call)
        if problem is not None:
            line = call.completion if call.f == "read" and call.completion else call.invoke
            raise HistoryError(problem, line.index + 1)


def _indexed(history: Sequence[Operation]) -> list[Operation]:
    """Keep file positions when they are distinct; number operations in order otherwise."""
    if len({op.index for op in history}) == len(history):
        return list(history)
    return [dataclasses.replace(op, index=number) for number, op in enumerate(history)]


def check(
    history: Sequence[Operation],
    model: str | Model | RateLimit,
    *,
    time_budget_s: float = 5.0,
    max_steps: int | None = None,
    minimize: bool = True,
    initial: Any = None,
) -> CheckResult:
    """Check ``history`` against ``model``; never runs much past ``time_budget_s``.

    ``time_budget_s`` counts this thread's CPU time, so the same history gets the
    same verdict on a busy machine; wall-clock time is capped at WALL_FACTOR
    times it (`_budget`).

    ``max_steps`` caps the search steps over all keys (None: only time counts).
    ``initial`` is the model's initial value (register: null, counter: 0).
    ``model`` is a name, or a :class:`RateLimit` for the ``rate`` model.
    Raises :class:`HistoryError` when an operation does not belong to the model.
    """
    chosen = resolve_model(model)
    limit = model if isinstance(model, RateLimit) else None
    if chosen is Model.RATE and limit is None:
        raise UsageError(
            "the rate model needs its parameters: pass RateLimit(limit=5, window_s=1.0, f=...) "
            "(heisen verify: --limit and --window)"
        )
    started = time.monotonic()
    calls = pair_calls(_indexed(history))
    _validate(calls, chosen)
    if limit is not None:
        limit = rate.resolve(calls, limit)
    partitions: dict[Any, list[Call]] = {}
    for call in calls:
        partitions.setdefault(call.key, []).append(call)
    budget = Budget(time_budget_s, max_steps)
    shrink_budget = Budget(max(1.0, time_budget_s)) if minimize else None
    violations: list[Violation] = []
    unknown: list[Any] = []
    for key in sorted(partitions, key=lambda k: (k is None, isinstance(k, str), str(k))):
        if budget.exhausted():
            unknown.append(key)
            continue
        if limit is not None:
            findings, decided = rate.check_key(partitions[key], limit, budget)
        else:
            findings, decided = _check_key(chosen, partitions[key], budget, shrink_budget, initial)
        if not decided:
            unknown.append(key)
        for finding in findings:
            if len(violations) < MAX_VIOLATIONS:
                violations.append(
                    Violation(
                        key=key,
                        kind=finding.kind,
                        message=finding.message,
                        operations=tuple(operations_of(finding.calls)),
                        minimal=finding.minimal,
                    )
                )
    valid = False if violations else (None if unknown else True)
    stats = CheckStats(
        operations=len(calls),
        keys=len(partitions),
        steps=budget.steps,
        seconds=time.monotonic() - started,
    )
    return CheckResult(valid, chosen, tuple(violations), stats, tuple(unknown))


def _check_key(
    model: Model,
    calls: list[Call],
    budget: Budget,
    shrink_budget: Budget | None,
    initial: Any,
) -> tuple[list[KeyFinding], bool]:
    """(findings, decided) for one key."""
    if model is Model.COUNTER:
        found = counter.check_key(calls, budget, shrink_budget, 0 if initial is None else initial)
        return found, True
    if model is Model.SET:
        return set_model.check_key(calls, budget, shrink_budget), True
    finding, outcome = register.check_key(calls, budget, shrink_budget, initial)
    return ([finding] if finding else []), outcome.linearizable is not None
