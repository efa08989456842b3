"""Shrink a failing payload to a small one that still fails the same way.

Design
------
The caller gives a payload and `still_fails(candidate) -> bool`, which sends
the candidate and compares the outcome *kind* with the original failure (a
5xx stays a 5xx; a 500 turning into a 400 is not "still failing"). The
shrinker only ever keeps a candidate for which the predicate said yes, so the
result always fails like the original.

What it tries, coarse to fine, one pass each, repeated until a whole round
of passes changes nothing:

1. **Drop** — each object or array is first tried empty; then each object
   key is removed; arrays are halved (first half, second half) and then lose
   one element at a time. Top-down, so dropping a parent saves the work on
   its children.
2. **Flatten** — an object or array is replaced by one of its composite
   children; a long chain of single-child containers (`[[[[…]]]]`) is cut by
   bisection (deepest descendant, then halfway, then one level).
3. **Shorten strings** — the empty string, then halving (first half, then
   second half), then a binary search on the prefix length between the
   shortest known passing prefix and the failing string, then, for strings
   of at most 64 characters, deleting one character at a time.
4. **Numbers** — toward zero: 0 first, then the schema's boundaries that lie
   between zero and the value (so `qty` above `maximum` lands next to it),
   then a binary search on the magnitude between the largest value known to
   pass and the smallest known to fail. `9223372036854775807` under
   `qty > 2147483647` becomes `2147483648` in 63 attempts. Floats are
   bisected on their bit patterns (at most 63 steps); non-integral floats
   are first truncated.
5. **Tame floats** — `NaN` and `±Infinity` are tried as `0.0` and `1.0`.

Scalars are never replaced by another type (a string by `null`): that
usually reaches a different code path, and the point is to keep the bug.

Why it terminates: a candidate is only sent if its cost is strictly lower
than the current payload's, where cost is the tuple (nodes, total string
length, non-finite floats, sum of number magnitudes) compared
lexicographically. Nodes and lengths are natural numbers, the number of
non-finite floats too, and magnitudes are drawn from integers and floats
reachable by halving, so every accepted step descends in a well-founded
order. On top of that, at most `max_attempts` predicate calls are made, and
candidates already rejected are never sent twice (a digest cache).

Deterministic: the passes visit nodes in document order and use no
randomness; the same payload and predicate give the same result.

Extending it: add a pass method that proposes candidates through
`self.attempt`, and make sure each one lowers the cost, or give `_cost` a
new component (placed after the existing ones) that it lowers.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from heisen.fuzz._cases import replace_at
from heisen.fuzz._schema import Schema
from heisen.fuzz._values import encode_text, merged

_Path = tuple[str | int, ...]
MISSING = object()
"""What `value_at` gives for a path the value does not have."""
_SHORT_STRING = 64


@dataclass(frozen=True)
class ShrinkResult:
    original: Any
    shrunk: Any
    attempts: int
    """How many times `still_fails` was called."""
    steps: int = 0
    """How many candidates were kept."""


class _Exhausted(Exception):
    pass


def shrink(
    payload: Any,
    still_fails: Callable[[Any], bool],
    *,
    max_attempts: int = 200,
    schema: Schema | None = None,
) -> ShrinkResult:
    """The smallest payload found that `still_fails`, within `max_attempts` calls."""
    shrinker = _Shrinker(payload, still_fails, max_attempts, schema)
    try:
        shrinker.run()
    except _Exhausted:
        pass
    return ShrinkResult(payload, shrinker.current, shrinker.attempts, shrinker.steps)


class _Shrinker:
    def __init__(
        self,
        payload: Any,
        still_fails: Callable[[Any], bool],
        max_attempts: int,
        schema: Schema | None,
    ) -> None:
        self.current = payload
        self.cost = _cost(payload)
        self.still_fails = still_fails
        self.max_attempts = max_attempts
        self.schema = schema
        self.attempts = 0
        self.steps = 0
        self.rejected: set[bytes] = set()

    def run(self) -> None:
        passes = (
            self.drop,
            self.flatten,
            self.shorten_strings,
            self.shrink_numbers,
            self.tame_floats,
        )
        while True:
            improved = False
            for shrink_pass in passes:
                improved |= shrink_pass()
            if not improved:
                return

    def attempt(self, candidate: Any) -> bool:
        """Keep `candidate` if it is cheaper and still fails; True when kept."""
        cost = _cost(candidate)
        if not cost < self.cost:
            return False
        digest = hashlib.sha1(encode_text(candidate).encode("utf-8")).digest()
        if digest in self.rejected:
            return False
        if self.attempts >= self.max_attempts:
            raise _Exhausted
        self.attempts += 1
        if self.still_fails(candidate):
            self.current, self.cost = candidate, cost
            self.steps += 1
            return True
        self.rejected.add(digest)
        return False

    def attempt_at(self, path: _Path, value: Any, *, remove: bool = False) -> bool:
        return self.attempt(replace_at(self.current, path, value, remove=remove))

    def restartable(
        self, per_node: Callable[[_Path, Any], bool], want: Callable[[Any], bool]
    ) -> bool:
        """Run `per_node` over matching nodes in document order; after a change, walk again."""
        improved = False
        restart = True
        while restart:
            restart = False
            for path, value in _nodes(self.current):
                if want(value) and per_node(path, value):
                    improved = restart = True
                    break
        return improved

    # -- passes -------------------------------------------------------------

    def drop(self) -> bool:
        def per_node(path: _Path, value: Any) -> bool:
            if value and self.attempt_at(path, type(value)()):
                return True
            if isinstance(value, dict):
                return any(self.attempt_at((*path, key), None, remove=True) for key in list(value))
            if len(value) > 1:
                half = len(value) // 2
                if self.attempt_at(path, value[:half]) or self.attempt_at(path, value[half:]):
                    return True
            return any(
                self.attempt_at((*path, index), None, remove=True) for index in range(len(value))
            )

        return self.restartable(per_node, lambda v: isinstance(v, dict | list))

    def flatten(self) -> bool:
        def per_node(path: _Path, value: Any) -> bool:
            chain = [value]
            while isinstance(chain[-1], dict | list) and len(chain[-1]) == 1:
                only = (
                    next(iter(chain[-1].values())) if isinstance(chain[-1], dict) else chain[-1][0]
                )
                if not isinstance(only, dict | list):
                    break
                chain.append(only)
            if len(chain) > 2:
                for target in (chain[-1], chain[len(chain) // 2], chain[1]):
                    if self.attempt_at(path, target):
                        return True
            children = value.values() if isinstance(value, dict) else value
            return any(
                self.attempt_at(path, child) for child in children if isinstance(child, dict | list)
            )

        return self.restartable(per_node, lambda v: isinstance(v, dict | list) and bool(v))

    def shorten_strings(self) -> bool:
        def per_node(path: _Path, text: str) -> bool:
            if self.attempt_at(path, ""):
                return True
            changed = False
            passing = 0
            while len(text) > 1:
                half = len(text) // 2
                if self.attempt_at(path, text[:half]):
                    text, changed = text[:half], True
                elif self.attempt_at(path, text[half:]):
                    text, changed = text[half:], True
                else:
                    passing = half
                    break
            low, high = passing, len(text)
            while high - low > 1:
                middle = (low + high) // 2
                if self.attempt_at(path, text[:middle]):
                    high, changed = middle, True
                else:
                    low = middle
            text = text[:high]
            if len(text) <= _SHORT_STRING:
                index = 0
                while index < len(text):
                    if self.attempt_at(path, text[:index] + text[index + 1 :]):
                        text, changed = text[:index] + text[index + 1 :], True
                    else:
                        index += 1
            return changed

        improved = False
        for path, value in list(_nodes(self.current)):
            if isinstance(value, str) and value_at(self.current, path) == value:
                improved |= per_node(path, value)
        return improved

    def shrink_numbers(self) -> bool:
        improved = False
        for path, value in list(_nodes(self.current)):
            if _is_number(value) and value_at(self.current, path) == value and math.isfinite(value):
                if isinstance(value, int):
                    improved |= self.shrink_integer(path, value)
                else:
                    improved |= self.shrink_float(path, value)
        return improved

    def shrink_integer(self, path: _Path, value: int) -> bool:
        if value == 0:
            return False
        if self.attempt_at(path, 0):
            return True
        sign = 1 if value > 0 else -1
        passing, failing = 0, abs(value)
        changed = False
        for boundary in self.boundaries(path):
            magnitude = abs(int(boundary))
            if int(boundary) * sign > 0 and passing < magnitude < failing:
                for near in (magnitude, magnitude + 1):
                    if near < failing and self.attempt_at(path, sign * near):
                        failing, changed = near, True
                    elif near < failing:
                        passing = max(passing, near)
        while failing - passing > 1:
            middle = (passing + failing) // 2
            if self.attempt_at(path, sign * middle):
                failing, changed = middle, True
            else:
                passing = middle
        return changed

    def shrink_float(self, path: _Path, value: float) -> bool:
        if value == 0:
            return False
        if self.attempt_at(path, 0.0):
            return True
        changed = False
        if not value.is_integer() and self.attempt_at(path, float(math.trunc(value))):
            value, changed = float(math.trunc(value)), True
        # Positive doubles sort like their bit patterns: bisect those, so at most 63 steps.
        sign = math.copysign(1.0, value)
        passing, failing = 0, _bits(abs(value))
        while failing - passing > 1:
            middle = (passing + failing) // 2
            if self.attempt_at(path, sign * _float(middle)):
                failing, changed = middle, True
            else:
                passing = middle
        return changed

    def tame_floats(self) -> bool:
        improved = False
        for path, value in list(_nodes(self.current)):
            if isinstance(value, float) and not math.isfinite(value):
                improved |= self.attempt_at(path, 0.0) or self.attempt_at(path, 1.0)
        return improved

    def boundaries(self, path: _Path) -> list[float]:
        """The numeric bounds declared for the field at `path`, nearest to zero first."""
        node = self.schema
        for part in path:
            if node is None:
                return []
            node = merged(node)
            if isinstance(part, int):
                node = node.items
            else:
                extra = node.additional_properties
                node = node.properties.get(part, extra if isinstance(extra, Schema) else None)
        if node is None:
            return []
        low, high = merged(node).bounds()
        return sorted((b for b in (low, high) if b is not None), key=abs)


def _bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


def _float(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", bits))[0])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _nodes(value: Any) -> Iterator[tuple[_Path, Any]]:
    """Every node with its path, in document order (iterative: nesting depth is unbounded)."""
    stack: list[tuple[_Path, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, dict):
            stack += [((*path, key), child) for key, child in reversed(node.items())]
        elif isinstance(node, list):
            stack += [((*path, index), node[index]) for index in range(len(node) - 1, -1, -1)]


def value_at(value: Any, path: _Path) -> Any:
    """The part of `value` at `path` (keys and indices), or MISSING."""
    for part in path:
        if isinstance(value, dict) and isinstance(part, str) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return MISSING
    return value


def _cost(value: Any) -> tuple[int, int, int, Fraction]:
    nodes = length = nonfinite = 0
    magnitude = Fraction(0)
    for _, node in _nodes(value):
        nodes += 1
        if isinstance(node, str):
            length += len(node)
        elif _is_number(node):
            if isinstance(node, float) and not math.isfinite(node):
                nonfinite += 1
            else:
                magnitude += abs(Fraction(node))
    return nodes, length, nonfinite, magnitude
