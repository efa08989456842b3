"""The functions and methods an expression may call, each kept within the budget.

Most functions are Python's builtins, called as they are: their cost is bounded
by the size of their arguments, which the budget already bounds. Four need a
guard: ``int``/``float`` of a long string (digit conversion), ``str`` (its
result can be far larger than its argument's item count), ``round`` with a
huge ``ndigits`` (it computes ``10 ** ndigits``), and ``sum`` with a list or
tuple start (repeated concatenation is quadratic), which is rewritten as a
loop charging each concatenation to the budget.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from heisen.oracle._expr_budget import (
    MAX_DIGITS,
    MAX_MEMORY,
    MAX_SIZE,
    Budget,
    budget_error,
    container_bytes,
    text_bytes,
)

__all__ = ["FUNCTIONS", "ITERABLE_FUNCTIONS", "METHODS", "call_function"]

FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "int": int,
    "float": float,
    "str": str,
    "round": round,
    "all": all,
    "any": any,
}

ITERABLE_FUNCTIONS = frozenset({"all", "any", "max", "min", "sum"})
"""The functions that may take a generator expression."""

METHODS = frozenset({"keys", "values", "items"})
"""The methods an expression may call, on mappings only, without arguments."""

_Guard = Callable[[Budget, Sequence[Any], ast.AST], Any]


def call_function(budget: Budget, name: str, args: Sequence[Any], node: ast.AST) -> Any:
    """Call the function ``name``; Python's own errors propagate for the caller to translate."""
    guard = _GUARDS.get(name)
    if guard is not None:
        return guard(budget, args, node)
    return FUNCTIONS[name](*args)


def _number(convert: Callable[..., Any]) -> _Guard:
    def guarded(budget: Budget, args: Sequence[Any], node: ast.AST) -> Any:
        if args and isinstance(args[0], str | bytes | bytearray):
            text = args[0].strip()
            if len(text) > MAX_DIGITS + 1:
                raise budget_error(
                    "size",
                    f"{convert.__name__}() of a string of {len(text):,} characters "
                    f"(at most {MAX_DIGITS:,} digits)",
                    node,
                )
        result = convert(*args)
        if isinstance(result, int):
            budget.check_int(result.bit_length(), node)
        return result

    return guarded


def _str(budget: Budget, args: Sequence[Any], node: ast.AST) -> str:
    if args:
        length = budget.text_length(args[0], MAX_SIZE, node)
        if length > MAX_SIZE:
            raise budget_error("size", f"str() would print more than {MAX_SIZE:,} characters", node)
        if length > MAX_MEMORY - budget.memory:
            budget.charge_memory(length, node)
    result = str(*args)
    budget.check_size(len(result), node)
    budget.charge_memory(text_bytes(result, len(result)), node)
    return result


def _round(budget: Budget, args: Sequence[Any], node: ast.AST) -> Any:
    if len(args) >= 2 and isinstance(args[1], int) and abs(args[1]) > MAX_DIGITS:
        raise budget_error("size", f"round() to more than {MAX_DIGITS:,} digits", node)
    return round(*args)


def _sum(budget: Budget, args: Sequence[Any], node: ast.AST) -> Any:
    if len(args) != 2 or not isinstance(args[1], list | tuple):
        result = sum(*args)
        if isinstance(result, int):
            budget.check_int(result.bit_length(), node)
        return result
    total: Any = args[1]
    size = budget.size_of(total)
    for item in args[0]:
        budget.step(node)
        if not isinstance(item, type(total)):
            raise TypeError(
                f"can only concatenate {type(total).__name__} "
                f'(not "{type(item).__name__}") to {type(total).__name__}'
            )
        size += budget.size_of(item) - 1
        budget.check_size(size, node)
        budget.charge_memory(container_bytes(total, len(total) + len(item)), node)
        total = total + item
    budget.remember(total, size)
    return total


_GUARDS: Mapping[str, _Guard] = {
    "int": _number(int),
    "float": _number(float),
    "str": _str,
    "round": _round,
    "sum": _sum,
}
