"""A practical subset of JSONPath, enough for WireMock's `matchesJsonPath`.

Supported: `$`, `.name`, `['name']`, `[n]` (negative counts from the end),
`[*]` and `.*`, `..name` (recursive descent), and filters
`[?(@.field)]` / `[?(@.field OP literal)]` with OP one of
`== != > >= < <=`, the literal a number, a quoted string, true, false or null.
`evaluate` returns every value the path selects (an empty list when none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Step = Callable[[list[Any]], list[Any]]

_FILTER = re.compile(
    r"""^\?\(\s*@((?:\.[A-Za-z_$][\w$-]*|\[\s*'[^']*'\s*\])*)\s*
        (?:(==|!=|>=|<=|>|<)\s*(.+?))?\s*\)$""",
    re.VERBOSE,
)
_NAME = re.compile(r"[A-Za-z_$][\w$-]*")


class JsonPathError(ValueError):
    """The expression is outside the supported subset."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    expression: str
    steps: tuple[Step, ...]

    def evaluate(self, document: Any) -> list[Any]:
        values = [document]
        for step in self.steps:
            values = step(values)
            if not values:
                return []
        return values


def compile_jsonpath(expression: str) -> JsonPath:
    text = expression.strip()
    if not text.startswith("$"):
        raise JsonPathError(f"a JSONPath starts with '$': {expression!r}")
    steps: list[Step] = []
    i = 1
    while i < len(text):
        if text.startswith("..", i):
            i += 2
            name, i = _read_name_or_star(text, i, expression)
            steps.append(_descend(name))
        elif text[i] == ".":
            name, i = _read_name_or_star(text, i + 1, expression)
            steps.append(_child(name))
        elif text[i] == "[":
            end = _closing_bracket(text, i, expression)
            steps.append(_bracket(text[i + 1 : end].strip(), expression))
            i = end + 1
        else:
            raise JsonPathError(f"unexpected {text[i]!r} at position {i} in {expression!r}")
    return JsonPath(expression, tuple(steps))


def _read_name_or_star(text: str, i: int, expression: str) -> tuple[str, int]:
    if text.startswith("*", i):
        return "*", i + 1
    match = _NAME.match(text, i)
    if not match:
        raise JsonPathError(f"expected a field name at position {i} in {expression!r}")
    return match.group(0), match.end()


def _closing_bracket(text: str, start: int, expression: str) -> int:
    depth = 0
    quote: str | None = None
    for j in range(start, len(text)):
        char = text[j]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0 and char == "]":
                return j
    raise JsonPathError(f"unclosed '[' in {expression!r}")


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _child(name: str) -> Step:
    if name == "*":
        return lambda values: [c for v in values for c in _children(v)]
    return lambda values: [v[name] for v in values if isinstance(v, dict) and name in v]


def _descend(name: str) -> Step:
    def step(values: list[Any]) -> list[Any]:
        found: list[Any] = []
        stack = list(reversed(values))
        while stack:
            node = stack.pop()
            if name == "*":
                found.extend(_children(node))
            elif isinstance(node, dict) and name in node:
                found.append(node[name])
            stack.extend(reversed(_children(node)))
        return found

    return step


def _index(position: int) -> Step:
    def step(values: list[Any]) -> list[Any]:
        out = []
        for value in values:
            if isinstance(value, list) and -len(value) <= position < len(value):
                out.append(value[position])
        return out

    return step


def _bracket(inner: str, expression: str) -> Step:
    if inner == "*":
        return _child("*")
    if inner.startswith("?"):
        return _filter(inner, expression)
    if inner[:1] in "'\"" and inner[-1:] == inner[:1]:
        return _child(inner[1:-1])
    try:
        return _index(int(inner))
    except ValueError:
        raise JsonPathError(f"unsupported selector [{inner}] in {expression!r}") from None


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _filter(inner: str, expression: str) -> Step:
    match = _FILTER.match(inner)
    if not match:
        raise JsonPathError(f"unsupported filter [{inner}] in {expression!r}")
    field_path, operator, literal_text = match.groups()
    fields = re.findall(r"\.([A-Za-z_$][\w$-]*)|\[\s*'([^']*)'\s*\]", field_path or "")
    names = [a or b for a, b in fields]
    literal: Any = None
    if operator:
        literal_text = literal_text.strip()
        if literal_text[:1] == "'" and literal_text[-1:] == "'":
            literal = literal_text[1:-1]
        else:
            try:
                literal = json.loads(literal_text)
            except json.JSONDecodeError:
                raise JsonPathError(
                    f"unsupported literal {literal_text!r} in {expression!r}"
                ) from None
    compare = _COMPARE[operator] if operator else None

    def keep(item: Any) -> bool:
        value = item
        for name in names:
            if not isinstance(value, dict) or name not in value:
                return False
            value = value[name]
        if compare is None:
            return True
        try:
            return bool(compare(value, literal))
        except TypeError:
            return False

    def step(values: list[Any]) -> list[Any]:
        return [c for v in values for c in _children(v) if keep(c)]

    return step
