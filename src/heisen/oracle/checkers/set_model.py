"""The ``set`` model: a grow-only set; ``add x`` then ``read`` returning all elements.

Two findings per element:

* ``lost``: the element was known to be present — its ``ok`` add returned,
  or a read returned it — and a read that began *after* that moment does
  not contain it (an acknowledged write lost, or a stale read);
* ``unexpected``: a read returned an element that no ``ok`` or ``info`` add
  invoked before the read returned could have put there.

``fail`` adds never took effect; ``info`` reads are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from heisen.oracle.checkers._budget import Budget
from heisen.oracle.checkers._minimize import shrink
from heisen.oracle.checkers._values import describe, freeze, show
from heisen.oracle.checkers.register import KeyFinding
from heisen.oracle.history import Call, OpType

OPERATIONS = frozenset({"add", "read"})


def validate(call: Call) -> str | None:
    if call.f not in OPERATIONS:
        return f"f {call.f!r} is not an operation of model set (expected add, read)"
    if call.f == "read" and call.type is OpType.OK and not isinstance(call.output, list):
        return f"an ok read must return a list of all elements, got {call.output!r}"
    return None


def _contents(read: Call) -> frozenset[object]:
    return frozenset(freeze(item) for item in read.output)


def _lost(calls: Sequence[Call], element: object, read: Call) -> bool:
    """``element`` was known present before ``read`` began, yet ``read`` lacks it."""
    if element in _contents(read):
        return False
    for call in calls:
        if call is read or call.type is not OpType.OK or call.returned is None:
            continue
        if call.returned >= read.called:
            continue
        if call.f == "add" and freeze(call.input) == element:
            return True
        if call.f == "read" and element in _contents(call):
            return True
    return False


def _unexpected(calls: Sequence[Call], element: object, read: Call) -> bool:
    if element not in _contents(read):
        return False
    assert read.returned is not None
    return not any(
        call.f == "add" and freeze(call.input) == element and call.called <= read.returned
        for call in calls
        if call.type is not OpType.FAIL
    )


def check_key(
    calls: Sequence[Call], budget: Budget, minimize_budget: Budget | None
) -> list[KeyFinding]:
    kept = [
        c
        for c in calls
        if c.type is not OpType.FAIL and not (c.f == "read" and c.type is not OpType.OK)
    ]
    reads = sorted((c for c in kept if c.f == "read"), key=lambda c: c.called)
    adders: dict[object, list[Call]] = {}
    for call in kept:
        if call.f == "add":
            adders.setdefault(freeze(call.input), []).append(call)
    # When each element became known present: first ok add return or first read return holding it.
    known: dict[object, tuple[int, Call]] = {}
    for call in kept:
        if call.returned is None or call.type is not OpType.OK:
            continue
        elements = [freeze(call.input)] if call.f == "add" else list(_contents(call))
        for element in elements:
            if element not in known or call.returned < known[element][0]:
                known[element] = (call.returned, call)
    findings: list[KeyFinding] = []
    reported: set[tuple[str, object]] = set()
    for read in reads:
        contents = _contents(read)
        for element in sorted(contents - set(adders), key=repr):
            findings.append(_finding("unexpected", element, read, kept, minimize_budget, findings))
            reported.add(("unexpected", element))
        for element, (moment, _) in known.items():
            if (
                moment < read.called
                and element not in contents
                and ("lost", element) not in reported
            ):
                findings.append(_finding("lost", element, read, kept, minimize_budget, findings))
                reported.add(("lost", element))
    for element, adds in adders.items():
        for read in reads:
            if ("unexpected", element) in reported or element not in _contents(read):
                continue
            if _unexpected(adds, element, read):
                findings.append(
                    _finding("unexpected", element, read, kept, minimize_budget, findings)
                )
                reported.add(("unexpected", element))
    budget.spend(len(reads))
    return findings


def _finding(
    kind: str,
    element: object,
    read: Call,
    calls: Sequence[Call],
    minimize_budget: Budget | None,
    so_far: Sequence[KeyFinding],
) -> KeyFinding:
    if kind == "lost":
        message = (
            f"element {show(element)} was present before {describe(read)} began, but it is missing"
        )
        predicate = _lost
    else:
        message = f"{describe(read)} holds element {show(element)}, which no add before it could have put there"
        predicate = _unexpected
    others = [c for c in calls if c is not read]
    witness, minimal = [*others, read], False
    if minimize_budget is not None and len(so_far) < 10:

        def fails(candidate: list[Call]) -> bool:
            return predicate(candidate, element, read)

        witness, minimal = shrink(others, fails, minimize_budget, pinned=[read])
    return KeyFinding(kind, message, tuple(witness), minimal)
