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


ROWS = [
    {"user": "ann", "qty": 2, "ok": True},
    {"user": "bob", "qty": 5, "ok": False},
    {"user": "ann", "qty": 1, "ok": True},
]


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("all(v <= 10 for v in body.accepted.values())", {"body": {"accepted": {"a": 3}}}, True),
        ("all(v <= 10 for v in body.accepted.values())", {"body": {"accepted": {"a": 11}}}, False),
        ('sum(r["qty"] for r in rows if r["ok"])', {"rows": ROWS}, 3),
        ('len({o["user"] for o in rows}) == len(rows)', {"rows": ROWS}, False),
        ('len({o["user"] for o in rows})', {"rows": ROWS}, 2),
        (
            "sorted_keys == [k for k in x.keys()]",
            {"x": {"b": 1, "a": 2}, "sorted_keys": ["b", "a"]},
            True,
        ),
        ("[v for v in x.values()]", {"x": {"b": 1, "a": 2}}, [1, 2]),
        ("[k + str(v) for k, v in x.items()]", {"x": {"b": 1, "a": 2}}, ["b1", "a2"]),
        ("{k: v * 2 for k, v in x.items() if v > 1}", {"x": {"b": 1, "a": 2}}, {"a": 4}),
        ('x["k"] + x["j"]', {"x": {"k": 1, "j": 2}}, 3),
        ("[(a, b) for (a, (b, c)) in x]", {"x": [(1, (2, 3))]}, [(1, 2)]),
        ("[a * b for a in xs for b in xs if a < b]", {"xs": [1, 2, 3]}, [2, 3, 6]),
        ("[[b for b in a] for a in xs]", {"xs": [[1], [2, 3]]}, [[1], [2, 3]]),
        ("[y for x in xs for y in x if y > x[0]]", {"xs": [[1, 2], [5, 4]]}, [2]),
        ("max(len(r) for r in rows)", {"rows": [[1], [1, 2]]}, 2),
        ("min(r['qty'] for r in rows)", {"rows": ROWS}, 1),
        ("any(r['ok'] for r in rows) and not all(r['ok'] for r in rows)", {"rows": ROWS}, True),
        ("{'a', 'b'} == {k for k in x}", {"x": {"a": 1, "b": 2}}, True),
        ("{'a': 1, 'b': [2]}", {}, {"a": 1, "b": [2]}),
        ("{1, 2} - {2}", {}, {1}),
        ("'ann' in {r['user'] for r in rows}", {"rows": ROWS}, True),
        ("sum([[1], [2]], [])", {}, [1, 2]),
        ("sum(1 for _ in rows)", {"rows": ROWS}, 3),
        ("str(n) * 2 + 'x'", {"n": 7}, "77x"),
        ("len(x.items())", {"x": {"a": 1}}, 1),
        ("('a', 1) in x.items()", {"x": {"a": 1}}, True),
    ],
)
def test_mappings_and_comprehensions(text: str, variables: dict[str, Any], expected: Any) -> None:
    assert evaluate(text, **variables) == expected


def test_comprehension_variables_shadow_and_do_not_leak() -> None:
    # the comprehension's x is its own; the outer x is unchanged after it
    assert evaluate("[x * 10 for x in xs] + [x]", xs=[1, 2], x=7) == [10, 20, 7]
    # the first iterable is read in the enclosing scope, as in Python
    assert evaluate("[x for x in x]", x=[1, 2]) == [1, 2]
    # a name bound by one comprehension is unknown in a sibling one
    with pytest.raises(ExpressionError) as caught:
        evaluate("[v for v in xs] == [v]", xs=[1])
    assert caught.value.kind == "name"
    assert "unknown name 'v'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("len(rows) == 0 and body.total <= cap and x == null", {"rows", "body", "cap", "x"}),
        ("all(v <= 10 for v in body.accepted.values())", {"body"}),
        ("[x for x in x]", {"x"}),
        ("[y for x in xs for y in x if y > limit]", {"xs", "limit"}),
        ("{k: v for k, v in d.items()} == e", {"d", "e"}),
        ("[v for v in xs] + [v]", {"xs", "v"}),
        ("[[a for a in b] for b in c]", {"c"}),
        ("true and None or False and True and null", set()),
        ("max(len(s), abs(t), sum(u))", {"s", "t", "u"}),
        ('load.redeem.status["200"] <= 1', {"load"}),
        ("x[y]", {"x", "y"}),
    ],
)
def test_names_are_the_root_names_read(text: str, names: set[str]) -> None:
    assert parse_expression(text).names == frozenset(names)


def evidence(text: str, **variables: Any) -> dict[str, Any]:
    return parse_expression(text).evaluate_with_evidence(variables)[1]


def test_evidence_records_the_outermost_access_chains() -> None:
    assert evidence(
        "body.likes == load.like.ok", body={"likes": 87, "id": 1}, load={"like": {"ok": 100}}
    ) == {"body.likes": 87, "load.like.ok": 100}
    assert evidence("sold <= capacity", sold=3, capacity=2) == {"sold": 3, "capacity": 2}
    assert evidence('load.redeem.status["200"] <= 1', load={"redeem": {"status": {"200": 2}}}) == {
        'load.redeem.status["200"]': 2
    }
    assert evidence("rows[-1].qty + rows[0]['qty']", rows=[{"qty": 1}, {"qty": 4}]) == {
        "rows[-1].qty": 4,
        'rows[0]["qty"]': 1,
    }
    # a computed key ends the chain: its base and the key are recorded
    assert evidence("counts[user] <= 1", counts={"ann": 2}, user="ann") == {
        "counts": {"ann": 2},
        "user": "ann",
    }
    # only what was evaluated: `or` stopped at its first operand
    assert evidence("a or b.c", a=1, b={}) == {"a": 1}


def test_evaluate_with_evidence_returns_the_result() -> None:
    result, values = parse_expression("x + 1").evaluate_with_evidence({"x": 2})
    assert (result, values) == (3, {"x": 2})


def test_evidence_in_comprehensions_is_the_iterable_summarized() -> None:
    accepted = {f"u{i}": i for i in range(25)}
    values = evidence(
        "all(v <= cap for v in body.accepted.values())", body={"accepted": accepted}, cap=30
    )
    assert list(values) == ["body.accepted", "cap"]
    assert values["cap"] == 30
    shown = values["body.accepted"]
    assert len(shown) == 21
    assert shown["u0"] == 0 and "u20" not in shown
    assert shown["…"] == "… 5 more (25 items in all)"


def test_evidence_stays_small() -> None:
    values = evidence(
        "len(s) > 0 and len(xs) > 0 and len(deep) > 0",
        s="x" * 5000,
        xs=list(range(10_000)),
        deep=[[[[[[1]]]]]],
    )
    assert values["s"] == "x" * 200 + "… (5,000 characters)"
    assert values["xs"][:3] == [0, 1, 2]
    assert values["xs"][-1] == "… 9,980 more (10,000 items in all)"
    assert len(values["xs"]) == 21
    assert values["deep"] == [[[["… (1 items)"]]]]


def test_failed_evaluation_keeps_the_evidence_read_so_far() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("a > 0 and body.valeu > 0").evaluate_with_evidence(
            {"a": 1, "body": {"likes": 1, "id": 2}}
        )
    assert caught.value.kind == "field"
    assert "body has no field 'valeu' (fields: likes, id)" in str(caught.value)
    assert caught.value.evidence == {"a": 1}


def test_python_syntax_warnings_are_neither_shown_nor_errors() -> None:
    # pytest turns warnings into errors here: parsing must not emit any
    assert evaluate("1if x else 2", x=0) == 2
    assert evaluate(r'"\d" == s', s="\\d") is True
