"""Shrinking a failing sub-history to a 1-minimal one (delta debugging).

Input: the calls of one key that fail a predicate (``fails``), optionally
some *pinned* calls that must stay (the read a counter violation is about).

1. *Prefix cut*: calls sorted by invocation time; a binary search finds a
   short prefix that still fails. Failure is not strictly monotone in the
   prefix length (a later write can explain an earlier phantom read), so the
   cut is only kept if the predicate confirms it.
2. *Chunk removal* (Zeller's ddmin, in the simple sequential form): try to
   remove chunks of size n/2, n/4, … 1; keep every removal after which the
   predicate still fails. At size 1, passes repeat until one removes
   nothing.

Invariant: ``current`` always fails the predicate. Result: when the last
size-1 pass removes nothing, removing any single non-pinned call makes the
predicate false: the sub-history is 1-minimal (``minimal=True``).

Why it terminates: every kept removal makes ``current`` strictly smaller,
and a pass that removes nothing ends the loop; besides, at most
``max_checks`` predicate calls and the :class:`Budget` deadline are spent,
after which the smaller-but-maybe-not-minimal ``current`` is returned with
``minimal=False``.

How to extend: the predicate is any function of a list of calls; a model
brings its own (for linearizability it re-runs the search with a small step
cap and treats "unknown" as "does not fail", so shrinking never invents a
violation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from heisen.oracle.checkers._budget import Budget

T = TypeVar("T")


def shrink(
    items: Sequence[T],
    fails: Callable[[list[T]], bool],
    budget: Budget,
    *,
    pinned: Sequence[T] = (),
    max_checks: int = 5_000,
) -> tuple[list[T], bool]:
    """Return (smallest failing list found, whether it is 1-minimal). ``items`` must fail."""
    checks = 0
    fixed = list(pinned)

    def attempt(candidate: list[T]) -> bool | None:
        nonlocal checks
        checks += 1
        if checks > max_checks or budget.exhausted():
            return None
        return fails(candidate + fixed)

    current = list(items)
    low, high = 0, len(current)
    while low < high:
        middle = (low + high) // 2
        verdict = attempt(current[:middle])
        if verdict is None:
            return current + fixed, False
        if verdict:
            high = middle
        else:
            low = middle + 1
    current = current[:high]

    size = max(1, len(current) // 2)
    while True:
        removed = False
        index = 0
        while index < len(current):
            candidate = current[:index] + current[index + size :]
            verdict = attempt(candidate)
            if verdict is None:
                return current + fixed, False
            if verdict:
                current = candidate
                removed = True
            else:
                index += size
        if size == 1 and not removed:
            return current + fixed, True
        size = max(1, size // 2)
