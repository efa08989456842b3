"""The cost budget of one evaluation: steps, the size of each value built, memory.

Every limit is a module constant, documented in :mod:`heisen.oracle.expr`.

*Steps* count the nodes evaluated and the iterations of comprehensions: they
bound the time spent walking the tree. *Size* bounds what one built value
holds, counted recursively (a list counts 1 plus the size of each item, even
when the same item is repeated; a dict 1 plus its keys' and values' sizes; a
string its characters; an integer beyond 64 bits its decimal digits; any
other value 1): it bounds the work a builtin (``==``, ``in``, ``sum``) can do
on the value in one call, which steps cannot see. ``str()`` is bounded by
:meth:`Budget.text_length`, an estimate of the text it would print.
*Memory* adds up the bytes of every string and container built during the
evaluation (estimated before the allocation, never refunded): it bounds what
the evaluation can hold at once, since built values are kept until it ends.

Sizes are measured once per object and remembered (the object is kept alive,
so its ``id`` stays its own; small ones are measured again instead); measuring a value read from the variables walks
it iteratively and stops as soon as it passes :data:`MAX_SIZE`, so measuring
costs at most the size limit, once.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import ItemsView, Iterable, KeysView, Mapping, ValuesView
from typing import Any, cast

from heisen.oracle._expr_errors import ErrorKind, ExpressionError, column_of, source_of

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_LENGTH",
    "MAX_MEMORY",
    "MAX_SIZE",
    "MAX_STEPS",
    "Budget",
    "budget_error",
    "container_bytes",
    "text_bytes",
]

MAX_LENGTH = 2_000
"""Characters of an expression's text."""

MAX_DEPTH = 50
"""Nesting depth of the parsed expression (each ``for`` of a comprehension counts one)."""

MAX_STEPS = 200_000
"""Nodes evaluated plus comprehension iterations, in one evaluation."""

MAX_SIZE = 1_000_000
"""Size of any one value built (items counted recursively, characters, digits)."""

MAX_MEMORY = 4_000_000
"""Bytes of all the strings and containers one evaluation builds."""

MAX_DIGITS = 4_300
"""Decimal digits of an integer built or converted (Python's own int/str limit)."""

MAX_BITS = MAX_DIGITS * 3322 // 1000 + 1
"""The bit length of a :data:`MAX_DIGITS`-digit integer."""

_SLOT = 8  # bytes per item of a list or tuple
_SET_ITEM = 48  # bytes per item of a set, with its hash table
_DICT_ITEM = 64  # bytes per item of a dict, with its hash table
_HEADER = 64  # bytes of an empty container or string
_CONTAINERS = (Mapping, list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)


def budget_error(which: str, detail: str, node: ast.AST | None) -> ExpressionError:
    """The error for an exceeded budget, naming it and the part of the expression."""
    where = f" in {source_of(node)!r}" if node is not None else ""
    return ExpressionError(
        f"{which} budget exceeded{where}: {detail}",
        column_of(node) if node is not None else None,
        ErrorKind.BUDGET,
    )


_SMALL = 1 << 64
_PRINTABLE_DEPTH = 500  # str() of a deeper value would hit Python's recursion limit
_REMEMBERED = 32  # smaller values are measured again rather than remembered: it costs as little


def _scalar_size(value: object) -> int | None:
    """The size of a value that holds no other value, or None for a container."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) or 1  # type: ignore[arg-type]
    if kind is int:
        number = cast(int, value)
        return 1 if -_SMALL < number < _SMALL else _digits(number)
    if kind is list or kind is dict or kind is tuple:
        return None
    if isinstance(value, str | bytes | bytearray):
        return len(value) or 1
    if isinstance(value, int) and not isinstance(value, bool):
        return _digits(value)
    return None if isinstance(value, _CONTAINERS) else 1


def _digits(value: int) -> int:
    return value.bit_length() * 30103 // 100000 + 1


def _children(value: object) -> Iterable[object]:
    if isinstance(value, Mapping):
        return itertools.chain.from_iterable(value.items())
    assert isinstance(value, _CONTAINERS)
    return value


def _text_scalar(value: object) -> int | None:
    """About ``len(repr(value))`` for a value that holds no other value, else None."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) + 2  # type: ignore[arg-type]
    if kind is int:
        return _digits(value) + 1  # type: ignore[arg-type]
    if kind is float:
        return len(repr(value))
    if isinstance(value, _CONTAINERS):
        return None
    if isinstance(value, str | bytes | bytearray):
        return len(value) + 2
    return len(repr(value))


def _separators(container: object) -> int:
    count = len(container)  # type: ignore[arg-type]
    return 2 + (4 * count if isinstance(container, Mapping) else 2 * count)


def text_bytes(text: str | bytes | bytearray, length: int) -> int:
    """Bytes of a string of ``length`` characters like ``text`` (1 per ASCII character, else 4)."""
    ascii_only = isinstance(text, bytes | bytearray) or text.isascii()
    return _HEADER + length * (1 if ascii_only else 4)


def container_bytes(value: object, length: int) -> int:
    """Bytes of a container like ``value`` holding ``length`` items."""
    if isinstance(value, dict | Mapping):
        return _HEADER + length * _DICT_ITEM
    if isinstance(value, set | frozenset):
        return _HEADER + length * _SET_ITEM
    return _HEADER + length * _SLOT


class Budget:
    """The running cost of one evaluation; every check raises a ``budget`` :class:`ExpressionError`."""

    __slots__ = ("_sizes", "_texts", "memory", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.memory = 0
        self._sizes: dict[int, tuple[object, int]] = {}
        self._texts: dict[int, tuple[object, int]] = {}

    def step(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.too_many_steps(node)

    def too_many_steps(self, node: ast.AST) -> ExpressionError:
        return budget_error(
            "step",
            f"more than {MAX_STEPS:,} steps (nodes evaluated and comprehension iterations)",
            node,
        )

    def size_of(self, value: object) -> int:
        """The size of ``value``, at most ``MAX_SIZE + 1`` (anything larger is reported as that)."""
        scalar = _scalar_size(value)
        if scalar is not None:
            return scalar
        sizes = self._sizes
        known = sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        total = 0
        stack = [value]
        while stack and total <= MAX_SIZE:
            container = stack.pop()
            count = len(container)  # type: ignore[arg-type]
            total += 1 + (2 * count if isinstance(container, Mapping) else count)
            if total > MAX_SIZE:
                break
            for item in _children(container):
                size = _scalar_size(item)
                if size is None:
                    remembered = sizes.get(id(item))
                    if remembered is not None and remembered[0] is item:
                        size = remembered[1]
                    else:
                        stack.append(item)
                        size = 0
                total += size - 1  # its 1 was counted with the container's length
        total = min(total, MAX_SIZE + 1)
        if total >= _REMEMBERED:
            sizes[id(value)] = (value, total)
        return total

    def text_length(self, value: object, limit: int, node: ast.AST) -> int:
        """About ``len(str(value))``, computed without building it; above ``limit``, ``limit + 1``.

        Shared items count each time they occur, as ``str`` prints them, but a
        container's length is computed once and remembered. The walk is
        iterative; it stops once it has visited more than ``limit`` values not
        yet measured, since each adds at least one character, or once it is
        deeper than ``str`` itself could print.
        """
        scalar = _text_scalar(value)
        if scalar is not None:
            return scalar
        texts = self._texts
        seen = 0
        frames: list[list[Any]] = [[value, iter(_children(value)), _separators(value)]]
        while frames:
            frame = frames[-1]
            total: int = frame[2]
            for item in frame[1]:
                seen += 1
                length = _text_scalar(item)
                if length is None:
                    known = texts.get(id(item))
                    if known is None or known[0] is not item:
                        frame[2] = total
                        frames.append([item, iter(_children(item)), _separators(item)])
                        if len(frames) > _PRINTABLE_DEPTH:
                            raise budget_error(
                                "depth", "the value is nested too deeply to print", node
                            )
                        break
                    length = known[1]
                total += length
                if total > limit or seen > limit:
                    return limit + 1
            else:
                frames.pop()
                if total >= _REMEMBERED:
                    texts[id(frame[0])] = (frame[0], total)
                if not frames:
                    return total
                frames[-1][2] += total
                if frames[-1][2] > limit:
                    return limit + 1
        raise AssertionError("unreachable")

    def remember(self, value: object, size: int) -> None:
        """Record the size of a value just built (after :meth:`check_size`)."""
        if size >= _REMEMBERED and _scalar_size(value) is None:
            self._sizes[id(value)] = (value, size)

    def check_size(self, size: int, node: ast.AST) -> None:
        if size > MAX_SIZE:
            shown = f"more than {MAX_SIZE:,}" if size == MAX_SIZE + 1 else f"{size:,}"
            raise budget_error(
                "size",
                f"this would build a value of size {shown} (at most {MAX_SIZE:,}: "
                "items, counted with what they hold, or characters)",
                node,
            )

    def charge_memory(self, size: int, node: ast.AST) -> None:
        self.memory += size
        if self.memory > MAX_MEMORY:
            raise budget_error(
                "memory",
                f"the values built would take more than {MAX_MEMORY:,} bytes",
                node,
            )

    def check_int(self, bits: int, node: ast.AST) -> None:
        if bits > MAX_BITS:
            raise budget_error(
                "size", f"this would build an integer of more than {MAX_DIGITS:,} digits", node
            )
