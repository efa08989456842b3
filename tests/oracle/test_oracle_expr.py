from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from heisen.errors import UsageError
from heisen.oracle import ExpressionError, parse_expression


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
        ("[y for y in x]", "list comprehension"),
        ("{y for y in x}", "set comprehension"),
        ("sum(y for y in x)", "generator expression"),
        ("x[1:2]", "slice"),
        ("f'{x}'", "f-string"),
        ("(y := 1)", "assignment"),
        ("len(*x)", "unpacking"),
        ("x << 2", "'<<'"),
        ("{'a': 1}", "dict display"),
        ("max(x, key=abs)", "keyword arguments"),
        ("x = 1", "invalid syntax"),
        ("", "empty"),
    ],
)
def test_rejected_constructs(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, UsageError)


def test_rejection_names_the_column() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("sold <= 2 ** cap")
    assert caught.value.column == 9


@pytest.mark.parametrize(
    ("text", "variables", "fragment"),
    [
        ("sold <= capacity", {"sold": 1}, "unknown name 'capacity' (the probe gave: sold)"),
        ("body.total", {"body": {"count": 1}}, "no field 'total' (fields: count)"),
        ("rows[3]", {"rows": [1]}, "index 3 is out of range (length 1)"),
        ("x > 1", {"x": None}, "cannot evaluate 'x > 1'"),
        ("1 / x", {"x": 0}, "division by zero"),
        ("'a' * 10000000", {}, "more than 1000000 items"),
        ("[0] * n", {"n": 10**9}, "more than 1000000 items"),
        ("x.real", {"x": 1}, "no field 'real' on a value of type int"),
        ("len", {}, "is a function"),
    ],
)
def test_evaluation_errors_are_clear(text: str, variables: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text).evaluate(variables)
    assert fragment in str(caught.value)
