"""Reading names, fields, keys and indexes, with errors that say what there is.

A missing name or field is the most common mistake in an ``expect:`` (a typo),
so its message lists what exists and suggests the closest match.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from heisen.oracle._expr_check import LITERAL_NAMES
from heisen.oracle._expr_errors import (
    ErrorKind,
    ExpressionError,
    column_of,
    python_error,
    source_of,
)

__all__ = ["Scope", "field", "index", "lookup"]

_SHOWN = 20  # names or keys listed in a message
_MATCHED = 1_000  # keys compared for "did you mean", so a huge mapping costs little


class Scope(dict[str, Any]):
    """A comprehension's variables, in front of its enclosing scope: they shadow, never leak."""

    __slots__ = ("outer",)

    def __init__(self, outer: Mapping[str, Any]) -> None:
        super().__init__()
        self.outer = outer

    def __missing__(self, name: str) -> Any:
        return self.outer[name]


def lookup(node: ast.Name, env: Mapping[str, Any]) -> Any:
    """The value of a name: a literal name, else a variable of ``env`` or its outer scopes."""
    if node.id in LITERAL_NAMES:
        return LITERAL_NAMES[node.id]
    try:
        return env[node.id]
    except KeyError:
        pass
    names = _all_names(env)
    raise ExpressionError(
        f"unknown name {node.id!r} (names available: {_listed(names, len(names))})"
        f"{_did_you_mean(node.id, names)}",
        column_of(node),
        ErrorKind.NAME,
    )


def field(value: Any, node: ast.Attribute) -> Any:
    """``value.<node.attr>``: a mapping's key, a dataclass's field or a named tuple's."""
    name, where = node.attr, source_of(node.value)
    if isinstance(value, Mapping):
        if name in value:
            return value[name]
        raise ExpressionError(
            f"{where} has no field {name!r} (fields: {_keys(value)})"
            f"{_did_you_mean(name, map(str, value))}",
            column_of(node),
            ErrorKind.FIELD,
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [f.name for f in dataclasses.fields(value)]
        if name in fields:
            return getattr(value, name)
        raise ExpressionError(
            f"{where} has no field {name!r} (fields: {', '.join(fields)})"
            f"{_did_you_mean(name, fields)}",
            column_of(node),
            ErrorKind.FIELD,
        )
    if isinstance(value, tuple) and name in getattr(value, "_fields", ()):
        return getattr(value, name)
    raise ExpressionError(
        f"{where} has no field {name!r}: it is a value of type {type(value).__name__}, "
        "not a mapping",
        column_of(node),
        ErrorKind.TYPE,
    )


def index(value: Any, key: Any, node: ast.Subscript) -> Any:
    """``value[key]``: a mapping's key, or an integer index of a list, tuple or string."""
    where = source_of(node.value)
    if isinstance(value, Mapping):
        try:
            if key in value:
                return value[key]
        except TypeError as exc:  # an unhashable key
            raise python_error(node, exc) from None
        raise ExpressionError(
            f"{where} has no key {key!r} (keys: {_keys(value)})", column_of(node), ErrorKind.FIELD
        )
    if isinstance(value, Sequence) and isinstance(key, int) and not isinstance(key, bool):
        if -len(value) <= key < len(value):
            return value[key]
        raise ExpressionError(
            f"index {key} is out of range (length {len(value)}) in {source_of(node)!r}",
            column_of(node),
            ErrorKind.FIELD,
        )
    raise ExpressionError(
        f"cannot index {where} (a value of type {type(value).__name__}) with {key!r}",
        column_of(node),
        ErrorKind.TYPE,
    )


def _all_names(env: Mapping[str, Any]) -> list[str]:
    names: set[str] = set()
    while isinstance(env, Scope):
        names.update(env)
        env = env.outer
    names.update(map(str, itertools.islice(env, _MATCHED)))
    return sorted(names)


def _listed(items: list[str], total: int) -> str:
    shown = ", ".join(items[:_SHOWN])
    if total > _SHOWN:
        shown += f", … ({total} in all)"
    return shown or "none"


def _keys(value: Mapping[Any, Any]) -> str:
    return _listed([str(key) for key in itertools.islice(value, _SHOWN)], len(value))


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(itertools.islice(candidates, _MATCHED)), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
