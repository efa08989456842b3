"""The ``counter`` model: every read lies within what the adds allow at that time.

A counter starts at ``initial`` (0). ``add n`` adds ``n`` (negative allowed);
``read`` returns the value. For a read invoked at ``t0`` and returned at
``t1``:

* adds *certainly* applied: ``ok`` adds that returned before ``t0``;
* adds *possibly* applied: any ``ok`` or ``info`` add invoked before ``t1``.

So the read must lie between ``initial + (positive certain) + (negative
possible)`` and ``initial + (negative certain) + (positive possible)``.
Prefix sums over adds sorted by return and by invocation time make each
read O(log n). ``fail`` adds are dropped; ``info`` reads are dropped.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate

from heisen.oracle.checkers._budget import Budget
from heisen.oracle.checkers._minimize import shrink
from heisen.oracle.checkers._values import describe
from heisen.oracle.checkers.register import KeyFinding
from heisen.oracle.history import Call, OpType

OPERATIONS = frozenset({"add", "read"})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate(call: Call) -> str | None:
    if call.f not in OPERATIONS:
        return f"f {call.f!r} is not an operation of model counter (expected add, read)"
    if call.f == "add" and not _is_number(call.input):
        return f"add needs a number, got {call.input!r}"
    if call.f == "read" and call.type is OpType.OK and not _is_number(call.output):
        return f"an ok read must return a number, got {call.output!r}"
    return None


def _bounds(adds: Sequence[Call], read: Call, initial: float) -> tuple[float, float]:
    """Slow exact bounds of one read, used while shrinking."""
    low = high = initial
    assert read.returned is not None
    for add in adds:
        value = add.input
        certain = add.type is OpType.OK and add.returned is not None and add.returned < read.called
        possible = add.called <= read.returned
        if certain:
            low += value
            high += value
        elif possible:
            if value < 0:
                low += value
            else:
                high += value
    return low, high


def check_key(
    calls: Sequence[Call], budget: Budget, minimize_budget: Budget | None, initial: float = 0
) -> list[KeyFinding]:
    adds = [c for c in calls if c.f == "add" and c.type is not OpType.FAIL]
    reads = [c for c in calls if c.f == "read" and c.type is OpType.OK]
    done = sorted((c for c in adds if c.type is OpType.OK), key=lambda c: c.returned or 0)
    done_times = [c.returned or 0 for c in done]
    done_pos = [0, *accumulate(max(c.input, 0) for c in done)]
    done_neg = [0, *accumulate(min(c.input, 0) for c in done)]
    started = sorted(adds, key=lambda c: c.called)
    start_times = [c.called for c in started]
    start_pos = [0, *accumulate(max(c.input, 0) for c in started)]
    start_neg = [0, *accumulate(min(c.input, 0) for c in started)]
    findings: list[KeyFinding] = []
    for read in sorted(reads, key=lambda c: c.called):
        assert read.returned is not None
        certain = bisect_left(done_times, read.called)
        possible = bisect_right(start_times, read.returned)
        low = initial + done_pos[certain] + start_neg[possible]
        high = initial + done_neg[certain] + start_pos[possible]
        if low <= read.output <= high:
            continue
        kind = "read-below-bound" if read.output < low else "read-above-bound"
        bound = low if read.output < low else high
        message = (
            f"{describe(read)} is {'below' if read.output < low else 'above'} {bound:g}: "
            f"the adds {'acknowledged before it began' if read.output < low else 'invoked before it returned'} "
            f"allow only [{low:g}, {high:g}]"
        )
        witness, minimal = [*adds, read], False
        if minimize_budget is not None and len(findings) < 10:

            def fails(
                candidate: list[Call], read: Call = read, below: bool = read.output < low
            ) -> bool:
                lo, hi = _bounds([c for c in candidate if c is not read], read, initial)
                return bool(read.output < lo) if below else bool(read.output > hi)

            witness, minimal = shrink(adds, fails, minimize_budget, pinned=[read])
        findings.append(KeyFinding(kind, message, tuple(witness), minimal))
    budget.spend(len(reads))
    return findings
