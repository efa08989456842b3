"""The ``register`` and ``cas-register`` models: linearizability per key.

A register holds one value, initially ``null``. ``write v`` sets it; ``read``
returns it (the completion's ``value``); ``cas [old, new]`` sets it to
``new`` when it holds ``old`` (an ``ok`` cas succeeded, a ``fail`` cas did
not take effect). ``fail`` calls are dropped, ``info`` reads are dropped
(they observe nothing), ``info`` writes and cas may take effect at any time
after their invocation, or never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from heisen.oracle.checkers._budget import Budget
from heisen.oracle.checkers._minimize import shrink
from heisen.oracle.checkers._values import describe, freeze
from heisen.oracle.checkers._wgl import REJECT, SearchItem, SearchOutcome, search
from heisen.oracle.history import Call, OpType

READ, WRITE, CAS = 0, 1, 2
_CODES = {"read": READ, "write": WRITE, "cas": CAS}
MINIMIZE_STEPS = 20_000


@dataclass(frozen=True, slots=True)
class KeyFinding:
    kind: str
    message: str
    calls: tuple[Call, ...]
    minimal: bool


def operations_for(cas: bool) -> frozenset[str]:
    return frozenset(_CODES) if cas else frozenset({"read", "write"})


def validate(call: Call, cas: bool) -> str | None:
    """An error message when ``call`` is not an operation of this model."""
    allowed = operations_for(cas)
    if call.f not in allowed:
        model = "cas-register" if cas else "register"
        return f"f {call.f!r} is not an operation of model {model} (expected {', '.join(sorted(allowed))})"
    if call.f == "cas" and not (isinstance(call.input, list) and len(call.input) == 2):
        return f"cas needs value [old, new], got {call.input!r}"
    return None


def _step(state: Any, payload: tuple[int, Any, Any]) -> Any:
    code, first, second = payload
    if code == READ:
        return state if state == first else REJECT
    if code == WRITE:
        return first
    return second if state == first else REJECT


def _items(calls: Sequence[Call]) -> list[SearchItem]:
    items = []
    for call in calls:
        code = _CODES[call.f]
        if code == READ:
            payload = (READ, freeze(call.output), None)
        elif code == WRITE:
            payload = (WRITE, freeze(call.input), None)
        else:
            payload = (CAS, freeze(call.input[0]), freeze(call.input[1]))
        returned = call.returned if call.type is OpType.OK else None
        # an ok read observes: accepted only in the state it returned, which it leaves as it was
        items.append(SearchItem(call.called, returned, payload, observer=code == READ))
    return items


def relevant(calls: Sequence[Call]) -> list[Call]:
    """Drop what cannot matter: failed calls and reads whose outcome is unknown."""
    return [
        call
        for call in calls
        if call.type is not OpType.FAIL and not (call.f == "read" and call.type is OpType.INFO)
    ]


def linearize(calls: Sequence[Call], budget: Budget, initial: Any = None) -> SearchOutcome:
    return search(_items(calls), freeze(initial), _step, budget)


def _closed(calls: Sequence[Call], initial: Any) -> bool:
    """Every value a call observed was written by a call in ``calls`` (or is the initial one)."""
    written = {freeze(initial)}
    observed = []
    for call in calls:
        if call.f == "write":
            written.add(freeze(call.input))
        elif call.f == "cas":
            written.add(freeze(call.input[1]))
            if call.type is OpType.OK:
                observed.append(freeze(call.input[0]))
        elif call.type is OpType.OK:
            observed.append(freeze(call.output))
    return all(value in written for value in observed)


def check_key(
    calls: Sequence[Call], budget: Budget, minimize_budget: Budget | None, initial: Any = None
) -> tuple[KeyFinding | None, SearchOutcome]:
    """Search one key; on a violation shrink it to a minimal sub-history."""
    kept = sorted(relevant(calls), key=lambda call: (call.called, call.id))
    outcome = linearize(kept, budget, initial)
    if outcome.linearizable is not False:
        return None, outcome
    minimal = False
    witness = kept
    if minimize_budget is not None:
        need_closed = _closed(kept, initial)

        def fails(candidate: list[Call]) -> bool:
            if not candidate or (need_closed and not _closed(candidate, initial)):
                return False
            return linearize(candidate, Budget(60.0, MINIMIZE_STEPS), initial).linearizable is False

        witness, minimal = shrink(kept, fails, minimize_budget)
        witness = sorted(witness, key=lambda call: (call.called, call.id))
    final = linearize(witness, Budget(60.0, MINIMIZE_STEPS), initial)
    blocking = witness[final.blocking] if final.blocking is not None else None
    return KeyFinding(
        _kind(blocking), _message(blocking, len(kept)), tuple(witness), minimal
    ), outcome


def _kind(blocking: Call | None) -> str:
    if blocking is None:
        return "not-linearizable"
    return {"read": "stale-read", "cas": "lost-update"}.get(blocking.f, "not-linearizable")


def _message(blocking: Call | None, total: int) -> str:
    if blocking is None:
        return f"no linearization of these {total} operations exists"
    what = describe(blocking)
    return (
        f"{what} cannot be placed in any order of the operations concurrent with it "
        f"that a single register allows"
    )
