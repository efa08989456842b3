from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from heisen.errors import UsageError
from heisen.oracle import ExpressionError, parse_expression
from heisen.oracle.expr import ErrorKind


def evaluate(text: str, **variables: Any) -> Any:
    return parse_expression(text).evaluate(variables)


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("sold <= capacity", {"sold": 3, "capacity": 3}, True),
        ("available >= 0 and len(rows) == 0", {"available": 1, "rows": []}, True),
        ("body.items[0].qty > 0", {"body": {"items": [{"qty": 2}]}}, True),
        ('body["items"][-1]["qty"]', {"body": {"items": [{"qty": 1}, {"qty": 4}]}}, 4),
        ("value == null or int(value) >= 0", {"value": None}, True),
        ("value == None or int(value) >= 0", {"value": "-3"}, False),
        ("0 <= x < 10 != y", {"x": 3, "y": 10}, False),
        ("-a + b * 2 - c // 3 % 2 / 1", {"a": 1, "b": 2, "c": 9}, 2.0),
        ("'vip' in tags and 3 not in [1, 2]", {"tags": ["vip"]}, True),
        ("not ok or false", {"ok": True}, False),
        ("true and True and not False", {}, True),
        ("max(a, b) - min([a, b]) == abs(a - b)", {"a": 2, "b": 7}, True),
        ("sum(xs) == 6 and all(xs) and any([0, x])", {"xs": [1, 2, 3], "x": 1}, True),
        ("round(f, 1) == 2.5 and float('1.5') == 1.5 and str(3) == '3'", {"f": 2.46}, True),
        ("'a' if n > 1 else 'b'", {"n": 0}, "b"),
        ("value is null", {"value": None}, True),
    ],
)
def test_grammar(text: str, variables: dict[str, Any], expected: Any) -> None:
    assert evaluate(text, **variables) == expected


def test_names_are_the_free_variables() -> None:
    expression = parse_expression("len(rows) == 0 and body.total <= cap and x == null")
    assert expression.names == frozenset({"rows", "body", "cap", "x"})


def test_dataclass_fields_are_readable() -> None:
    @dataclass
    class Seat:
        sold: int

    assert evaluate("value.sold == 2", value=Seat(2)) is True


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2 ** 10 ** 10", "'**' (power)"),
        ("10 ** 10 ** 10", "not allowed"),
        ("x.__class__", "'__class__' is not allowed"),
        ("x._secret", "private"),
        ("__import__('os')", "not allowed"),
        ("open('/etc/passwd')", "calling 'open' is not allowed"),
        ("x.pop()", "calling 'x.pop' is not allowed"),
        ("(lambda: 1)()", "lambda"),
        ("(y for y in x) == 1", "generator expression is allowed only as the argument"),
        ("len(y for y in x)", "generator expression is allowed only as the argument"),
        ("[y for y.z in x]", "can bind names only"),
        ("[y for y[0] in x]", "can bind names only"),
        ("[1 for __y in x]", "cannot be a comprehension variable"),
        ("[1 for len in x]", "cannot be a comprehension variable"),
        ("[1 for true in x]", "cannot be a comprehension variable"),
        ("[y async for y in x]", "async for"),
        ("x.keys(1)", "'.keys()' takes no arguments"),
        ("x.get('a')", "calling 'x.get' is not allowed"),
        ("x.values", None),
        ("'%d' % 3", "string formatting"),
        ("{**x}", "'**' unpacking"),
        ("[*x]", "unpacking"),
        ("1j", "the literal 1j is not allowed"),
        ("b'x'", "the literal b'x' is not allowed"),
        ("len", "'len' is a function: call it"),
        ("x[1:2]", "slice"),
        ("f'{x}'", "f-string"),
        ("(y := 1)", "assignment"),
        ("len(*x)", "unpacking"),
        ("x << 2", "'<<'"),
        ("max(x, key=abs)", "keyword arguments"),
        ("x = 1", "invalid syntax"),
        ("", "empty"),
    ],
)
def test_rejected_constructs(text: str, fragment: str | None) -> None:
    if fragment is None:  # a field named like a method is an ordinary field
        assert parse_expression(text).evaluate({"x": {"values": 3}}) == 3
        return
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, UsageError)
    assert caught.value.kind == ErrorKind.SYNTAX == "syntax"


def test_rejection_names_the_column() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("sold <= 2 ** cap")
    assert caught.value.column == 9


@pytest.mark.parametrize(
    ("text", "variables", "kind", "fragment"),
    [
        (
            "sold <= capacity",
            {"sold": 1},
            "name",
            "unknown name 'capacity' (names available: sold)",
        ),
        (
            "valu == hits",
            {"hits": 1, "value": 2},
            "name",
            "unknown name 'valu' (names available: hits, value); did you mean 'value'?",
        ),
        (
            "body.valeu >= 0",
            {"body": {"likes": 1, "id": 2}},
            "field",
            "body has no field 'valeu' (fields: likes, id)",
        ),
        (
            "body.total",
            {"body": {"count": 1}},
            "field",
            "body has no field 'total' (fields: count)",
        ),
        ('body["k"]', {"body": {"j": 1}}, "field", "body has no key 'k' (keys: j)"),
        ("rows[3]", {"rows": [1]}, "field", "index 3 is out of range (length 1) in 'rows[3]'"),
        ("rows['a']", {"rows": [1]}, "type", "cannot index rows (a value of type list) with 'a'"),
        ("x > 1", {"x": None}, "type", "cannot evaluate 'x > 1'"),
        ("a and x > 1", {"a": 1, "x": None}, "type", "cannot evaluate 'x > 1'"),
        ("1 / x", {"x": 0}, "value", "cannot evaluate '1 / x': division by zero"),
        ("int(x)", {"x": "abc"}, "value", "invalid literal for int()"),
        ("min(v for v in x)", {"x": []}, "value", "empty sequence"),
        ("x.real", {"x": 1}, "type", "x has no field 'real': it is a value of type int"),
        (
            "x.keys()",
            {"x": [1]},
            "type",
            "'.keys()' needs a mapping, but x is a value of type list",
        ),
        ("[v for v in x]", {"x": 3}, "type", "cannot iterate over x (a value of type int)"),
        ("[a for a, b in x]", {"x": [(1, 2, 3)]}, "type", "expected 2 values, got more values"),
        ("[a for a, b in x]", {"x": [(1,)]}, "type", "expected 2 values, got 1 values"),
        ("[a for a, b in x]", {"x": [1]}, "type", "got a value of type int"),
        ("f % 2", {"f": "%s"}, "type", "string formatting with '%' is not allowed"),
        ("{x: 1}", {"x": [1]}, "type", "unhashable type: 'list'"),
        ("'a' * 10000000", {}, "budget", "size budget exceeded"),
        ("[0] * n", {"n": 10**9}, "budget", "size budget exceeded"),
        ("[v for v in x] + [y]", {"x": [1]}, "name", "unknown name 'y' (names available: x)"),
        ("[w for v in x]", {"x": [1]}, "name", "unknown name 'w' (names available: v, x)"),
    ],
)
def test_evaluation_errors_are_clear(
    text: str, variables: dict[str, Any], kind: str, fragment: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text).evaluate(variables)
    assert fragment in str(caught.value)
    assert caught.value.kind == kind
