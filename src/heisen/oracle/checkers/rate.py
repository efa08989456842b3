"""The ``rate`` model: at most ``limit`` successful ``f`` per key (per replica) in any window.

A rate limiter promises "at most N ``acquire`` per key in any window of W";
no probe of the final state can state that, the history can. Parameters
(:class:`RateLimit`): ``limit`` (N), ``window_s`` (W), ``f`` (the operation
that counts: ``acquire``, or the request's name; None means the one ``f``
the history holds) and ``per`` (``key``, or ``replica`` to hold each replica
to its own limit; the history is always partitioned by ``key``).

Which operations count
    Only ``ok`` completions of ``f``: they certainly took effect (were
    admitted). ``fail`` ones (a 429) certainly did not. ``info`` ones
    (timeout, reset, 5xx) may or may not have: a violation must be certain,
    so they are never counted, but a finding says how many were invoked
    before its window ended (each may have taken effect in it).

When is a violation certain
    The checker cannot know the server's instant of acceptance, only that an
    ``ok`` call took effect somewhere in [invoke, completion]. A set of N+1
    ``ok`` calls certainly took effect within one window if
    ``max(completion) - min(invoke) < W`` over the set: all their effect
    points lie in [min invoke, max completion], which a half-open window
    [min invoke, min invoke + W) contains. That is the only test: a
    *possible* violation (N+1 intervals that could be placed in one window,
    but need not be) is not reported, so a correct limiter is never flagged
    however slow its responses. The price: a limiter whose responses take
    longer than W to come back can over-admit undetected.

The algorithm (O(n log n) per key and replica: two sorts and a merge)
    A call (a, c) fits a window [s, s + W) iff ``c - W < s <= a``; with
    integer nanoseconds, iff s lies in [c - W + 1, a] (empty when the call
    itself took W or longer). The most calls that fit one window is the
    deepest overlap of those ranges: a sweep over their sorted starts and
    sorted ends, the depth at an instant taken after all of its events. Each
    maximal stretch of s where more than N fit is one finding (at most
    :data:`MAX_FINDINGS_PER_GROUP`), reported at its deepest point s*.
    Its sub-history is N+1 of the calls that fit [s*, s* + W): removing any
    one leaves N, which cannot break the limit, so it is 1-minimal by
    construction and no shrinking is needed.

Window semantics and limiter designs
    "Any window" is a sliding window. A fixed-window limiter ("N per calendar
    second") admits up to 2N in a sliding W (N at the end of one window, N
    at the start of the next): state ``limit: 2N`` for it, or use ``limit:
    N`` to find exactly that burst. A token bucket of capacity B refilled at
    r/s admits up to B + r·W in any W.

Extend it by adding fields to :class:`RateLimit`; the sweep only needs, per
group, the (invoke, completion) of the calls that count.
"""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from heisen.errors import UsageError
from heisen.oracle.checkers._budget import Budget
from heisen.oracle.checkers.register import KeyFinding
from heisen.oracle.history import Call, HistoryError, OpType

__all__ = ["MAX_FINDINGS_PER_GROUP", "Per", "RateLimit", "check_key", "replica_of", "resolve"]

MAX_FINDINGS_PER_GROUP = 50


class Per(StrEnum):
    """What one limit applies to: each key, or each (key, replica)."""

    KEY = "key"
    REPLICA = "replica"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` ok ``f`` per key (per replica when ``per`` says so) in any ``window_s``."""

    limit: int
    window_s: float
    f: str | None = None
    per: Per = Per.KEY

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise UsageError(f"the rate model's limit must be an integer >= 1, not {self.limit!r}")
        if isinstance(self.window_s, bool) or not isinstance(self.window_s, int | float):
            raise UsageError(f"the rate model's window must be a duration, not {self.window_s!r}")
        if not self.window_ns >= 1:
            raise UsageError(f"the rate model's window must be more than 0, not {self.window_s!r}")
        if self.f is not None and (not isinstance(self.f, str) or not self.f):
            raise UsageError(f"the rate model's f must be a non-empty string, not {self.f!r}")
        try:
            object.__setattr__(self, "per", Per(self.per))
        except ValueError:
            raise UsageError(f"per takes key or replica, not {self.per!r}") from None

    @property
    def window_ns(self) -> int:
        return round(self.window_s * 1e9)

    def describe(self) -> str:
        """``at most 5 acquire per key and replica in any 1 s``."""
        scope = "per key and replica" if self.per == Per.REPLICA else "per key"
        return f"at most {self.limit} {self.f or 'operations'} {scope} in any {_duration(self.window_ns)}"


def replica_of(call: Call) -> str | int | None:
    """The replica that served ``call``: its completion's, else its invocation's."""
    if call.completion is not None and call.completion.replica is not None:
        return call.completion.replica
    return call.invoke.replica


def resolve(calls: Sequence[Call], spec: RateLimit) -> RateLimit:
    """``spec`` with ``f`` settled, checked against the history; :class:`UsageError` otherwise.

    No ``f`` given: the history must hold exactly one. An ``f`` that no call
    has, or ``per: replica`` when no call of ``f`` names its replica, is an
    error, never a vacuous pass. An ``ok`` call of ``f`` without a replica is
    an error under ``per: replica`` (it cannot be charged to any replica).
    """
    names = sorted({call.f for call in calls})
    if not calls:
        return spec
    if spec.f is None:
        if len(names) != 1:
            raise UsageError(
                f"the history holds operations {', '.join(names)}: say which one the rate "
                "limit counts (f:, or --f)"
            )
        spec = replace(spec, f=names[0])
    elif spec.f not in names:
        close = difflib.get_close_matches(spec.f, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UsageError(
            f"no operation in the history has f {spec.f!r} (it holds {', '.join(names)}).{hint}"
        )
    if spec.per == Per.REPLICA:
        counted = [call for call in calls if call.f == spec.f]
        if all(replica_of(call) is None for call in counted):
            raise UsageError(
                f"per: replica, but no {spec.f!r} operation carries a replica field: the records "
                "do not know which replica served each request (a service reached by url: has no "
                "front proxy to tell)"
            )
        for call in counted:
            if call.type is OpType.OK and replica_of(call) is None:
                line = call.completion or call.invoke
                raise HistoryError(
                    f"per: replica, but this ok {spec.f!r} has no replica field", line.index + 1
                )
    return spec


def check_key(
    calls: Sequence[Call], spec: RateLimit, budget: Budget
) -> tuple[list[KeyFinding], bool]:
    """(findings, decided) for one key's calls; ``spec`` must come from :func:`resolve`."""
    groups: dict[str | int | None, tuple[list[Call], list[Call]]] = {}
    per_replica = spec.per == Per.REPLICA
    for call in calls:
        kind = call.type
        if call.f != spec.f or not (kind is OpType.OK or kind is OpType.INFO):
            continue
        replica = replica_of(call) if per_replica else None
        group = groups.get(replica)
        if group is None:
            group = groups[replica] = ([], [])
        group[0 if kind is OpType.OK else 1].append(call)
    findings: list[KeyFinding] = []
    for replica in sorted(groups, key=lambda r: (r is None, isinstance(r, str), str(r))):
        if not budget.spend(0):
            return findings, False
        oks, infos = groups[replica]
        findings += _sweep(oks, infos, spec, replica, per_replica)
        budget.spend(len(oks) + len(infos))
    return findings, True


def _sweep(
    oks: Sequence[Call],
    infos: Sequence[Call],
    spec: RateLimit,
    replica: str | int | None,
    per_replica: bool,
) -> list[KeyFinding]:
    """One finding per maximal stretch of window starts where more than ``limit`` calls fit."""
    width, limit = spec.window_ns, spec.limit
    # A call (a, c) fits the windows starting in [c - W + 1, a]: it starts to fit at
    # `starts` and stops at `stops` (a + 1). Calls of W or longer never fit.
    fits = [c for c in oks if c.returned is not None and c.returned - c.called < width]
    starts = sorted([c.returned - width + 1 for c in fits if c.returned is not None])
    stops = sorted([c.called + 1 for c in fits])
    peaks: list[tuple[int, int]] = []  # (deepest count, its instant), one per stretch
    depth = best = at = i = j = 0
    total = len(starts)
    while i < total:  # past the last start the depth only falls
        instant = starts[i] if starts[i] <= stops[j] else stops[j]
        while j < total and stops[j] == instant:
            depth -= 1
            j += 1
        while i < total and starts[i] == instant:
            depth += 1
            i += 1
        if depth > limit:  # the depth at an instant counts after all of its events
            if depth > best:
                best, at = depth, instant
        elif best:
            peaks.append((best, at))
            best = 0
            if len(peaks) >= MAX_FINDINGS_PER_GROUP:
                break
    if best and len(peaks) < MAX_FINDINGS_PER_GROUP:
        peaks.append((best, at))
    if not peaks:
        return []
    by_invoke = sorted(oks, key=lambda c: c.called)
    invoked = [call.called for call in by_invoke]
    info_invoked = sorted(call.called for call in infos)
    return [
        _finding(count, start, by_invoke, invoked, info_invoked, spec, replica, per_replica)
        for count, start in peaks
    ]


def _finding(
    count: int,
    start: int,
    by_invoke: Sequence[Call],
    invoked: Sequence[int],
    info_invoked: Sequence[int],
    spec: RateLimit,
    replica: str | int | None,
    per_replica: bool,
) -> KeyFinding:
    width = spec.window_ns
    low, high = bisect_left(invoked, start), bisect_left(invoked, start + width)
    fitting = [
        c for c in by_invoke[low:high] if c.returned is not None and c.returned < start + width
    ]
    fitting.sort(key=lambda c: (c.returned or 0, c.called))
    witness = sorted(fitting[: spec.limit + 1], key=lambda c: c.called)
    span = max(c.returned or 0 for c in witness) - min(c.called for c in witness)
    unknown = bisect_left(info_invoked, start + width)
    where = f" on replica {replica}" if per_replica else ""
    numbers = sorted(op.index + 1 for c in witness for op in c.operations)
    lines = f"{numbers[0]} to {numbers[-1]}"
    message = (
        f"{count} ok {spec.f}{where} fit one {_duration(width)} window (limit {spec.limit}): "
        f"the {len(witness)} shown were invoked and completed within {_duration(span)} "
        f"(lines {lines}), so they took effect within {_duration(width)} whatever the "
        f"server's instant of acceptance"
    )
    if unknown:
        message += (
            f"; {unknown} info {spec.f} (outcome unknown) invoked before the window ended "
            "may have taken effect in it too"
        )
    return KeyFinding("rate-exceeded", message, tuple(witness), True)


def _duration(ns: int) -> str:
    if ns < 1_000:
        return f"{ns} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.4g} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.4g} ms"
    return f"{ns / 1e9:.4g} s"
