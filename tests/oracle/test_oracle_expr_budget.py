"""The expression language's cost budget: hostile expressions fail fast and small.

Each hostile expression must raise an ``ExpressionError`` of kind ``budget``
naming the budget exceeded, within well under a second of CPU time and a few
MB of memory (traced with tracemalloc), never hang, exhaust memory or recurse
out of the stack.
"""

from __future__ import annotations

import resource
import string
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heisen.oracle.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_MEMORY,
    MAX_SIZE,
    MAX_STEPS,
    ExpressionError,
    parse_expression,
)

CPU_SECONDS = 1.0  # each hostile case must fail within this much CPU time
WALL_SECONDS = 5.0  # and this much wall time, on a loaded 2-core machine
PEAK_BYTES = 8_000_000  # traced allocation peak: the memory budget plus the probe's overhead


def run_bounded(action: Callable[[], object], trace: bool = True) -> None:
    """Run ``action`` twice: timed, then traced; assert it stays within time and memory.

    Timing and tracing are separate runs since tracemalloc slows allocation
    several times over.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    assert cpu < CPU_SECONDS, f"took {cpu:.2f} s of CPU"
    assert wall < WALL_SECONDS, f"took {wall:.2f} s"
    if not trace:
        return
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        action()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert peak < PEAK_BYTES, f"allocated up to {peak:,} bytes"
    assert rss_growth_kb < 50_000, f"the process grew by {rss_growth_kb:,} kB"


def raises_within_bounds(action: Callable[[], object]) -> ExpressionError:
    """Run ``action`` within bounds; return the ExpressionError it must raise."""
    errors: list[ExpressionError] = []

    def expect_error() -> None:
        with pytest.raises(ExpressionError) as caught:
            action()
        errors.append(caught.value)

    run_bounded(expect_error)
    return errors[-1]


def fails_within_budget(text: str, variables: dict[str, Any], budget: str) -> ExpressionError:
    error = raises_within_bounds(lambda: parse_expression(text).evaluate(variables))
    assert error.kind == "budget"
    assert f"{budget} budget exceeded" in str(error)
    return error


@pytest.mark.parametrize(
    ("text", "budget", "fragment"),
    [
        ("str([[0]*1000000]*1000000)", "size", "'[0] * 1000000'"),
        ("sum([[0]*20000]*20000, [])", "size", "size 400,020,001"),
        ("'x'*1000000000", "size", "size 1,000,000,000"),
        ("[0] * 1000000", "size", "size 1,000,001"),
        ("len([['ab'] * 1000] * 1000)", "size", "size 2,001,001"),
        ("('ab' + 'cd') * 300000", "size", "size 1,200,000"),
        ("int('9' * 100000)", "size", "int() of a string of 100,000 characters"),
        ("float('1' * 5000)", "size", "float() of a string of 5,000 characters"),
        ("- " * 5000 + "1", "length", f"at most {MAX_LENGTH:,}"),
        ("-" * 1999 + "1", "depth", f"more than {MAX_DEPTH} deep"),
        ("not " * 400 + "x", "depth", "nested"),
        ("(" * 300 + "1" + ")" * 300, "depth", "nested"),
        ("[" * 100 + "]" * 100, "depth", "nested"),
        ("a" + ".a" * 600, "depth", "nested"),
        ("a" + "+a" * 600, "depth", "nested"),
        ("a" + "[0]" * 100, "depth", "nested"),
        ("x if c else " * 100 + "y", "depth", "nested"),
        ("[1 " + "for a in x " * 60 + "]", "depth", "nested"),
    ],
)
def test_what_the_text_shows_is_refused_at_parse(text: str, budget: str, fragment: str) -> None:
    error = raises_within_bounds(lambda: parse_expression(text))
    assert error.kind == "budget"
    assert f"{budget} budget exceeded" in str(error)
    assert fragment in str(error)


def test_power_is_refused_so_the_literal_examples_never_run() -> None:
    with pytest.raises(ExpressionError, match=r"'\*\*' \(power\)"):
        parse_expression("str([[0]*10**6]*10**6)")
    with pytest.raises(ExpressionError, match=r"'\*\*' \(power\)"):
        parse_expression('"x"*10**9')


def test_within_the_static_limits_it_parses_and_runs() -> None:
    assert parse_expression("-" * (MAX_DEPTH - 2) + "1").evaluate({}) == 1
    assert parse_expression("(" * 150 + "1" + ")" * 150).evaluate({}) == 1
    assert len(parse_expression("[0] * 400000").evaluate({})) == 400_000
    assert len(parse_expression("'x' * 999999").evaluate({})) == MAX_SIZE - 1
    assert len(parse_expression("[[0] * 998] * 1000").evaluate({})) == 1000


LIST_10K = list(range(10_000))
ROWS = [{"user": f"u{i % 97}", "qty": i % 7, "ok": i % 3 == 0} for i in range(10_000)]


@pytest.mark.parametrize(
    ("text", "variables", "budget"),
    [
        ("str([[0]*n]*n)", {"n": 1_000_000}, "size"),
        ("str([[0]*n]*n)", {"n": 999}, "size"),
        ("sum([[0]*n]*n, [])", {"n": 20_000}, "size"),
        ("sum([[0]*n]*n, [])", {"n": 700}, "memory"),
        ("[[[[0]*n]*n]*n]*n == [[[[0]*n]*n]*n]*n", {"n": 1000}, "size"),
        ("x in [y] * n", {"x": LIST_10K[:], "y": LIST_10K, "n": 1000}, "size"),
        ("s * n", {"s": "x", "n": 10**9}, "size"),
        ("s * n", {"s": "é", "n": 999_999}, "memory"),
        ("[s] * n", {"s": "x" * 1000, "n": 1000}, "size"),
        ("int(s * n)", {"s": "9", "n": 100_000}, "size"),
        ("int(s)", {"s": "9" * 100_000}, "size"),
        ("float(s)", {"s": "1" * 100_000}, "size"),
        ("a * a * a * a * a * a * a * a", {"a": 10**1000}, "size"),
        ("round(x, n)", {"x": 5, "n": -(10**10)}, "size"),
        ("str(xs)", {"xs": list(range(2_000_000))}, "size"),
        ("sum(1 for a in xs for b in xs for c in xs)", {"xs": list(range(1000))}, "step"),
        ("[x for x in xs]", {"xs": list(range(MAX_STEPS * 2))}, "step"),
        ("all(x == x for x in s)", {"s": "ab" * MAX_STEPS}, "step"),
        ("[[0] * n for x in xs]", {"n": 999_999, "xs": [1, 2]}, "memory"),
        ("max([0] * n, [0] * n, [0] * n)", {"n": 400_000}, "memory"),
        ("sum(len(s + t) for t in xs)", {"s": "x" * 500_000, "xs": ["a"] * 10}, "memory"),
        ("{k: [0] * 1000 for k in xs}", {"xs": LIST_10K}, "memory"),
        ("len([rows] * 100)", {"rows": ROWS}, "size"),
    ],
)
def test_hostile_evaluations_fail_fast_and_small(
    text: str, variables: dict[str, Any], budget: str
) -> None:
    fails_within_budget(text, variables, budget)


def test_the_step_budget_names_itself_and_its_limit() -> None:
    error = fails_within_budget("sum(1 for a in x for b in x)", {"x": LIST_10K}, "step")
    assert f"more than {MAX_STEPS:,} steps" in str(error)


def test_the_memory_budget_names_its_limit() -> None:
    error = fails_within_budget("[[0] * n for x in xs]", {"n": 999_999, "xs": [1]}, "memory")
    assert f"more than {MAX_MEMORY:,} bytes" in str(error)


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "text", ["str(deep)", "deep == other", "len([deep] * 3) == 3 and str(deep)"]
)
def test_deep_values_never_raise_recursion_error(text: str) -> None:
    variables = {"deep": deep_list(20_000), "other": deep_list(20_000)}
    error = raises_within_bounds(lambda: parse_expression(text).evaluate_with_evidence(variables))
    assert error.kind == "budget"
    assert "depth budget exceeded" in str(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('sum(r["qty"] for r in rows if r["ok"])', sum(r["qty"] for r in ROWS if r["ok"])),
        ("len({r['user'] for r in rows})", 97),
        ("all(n < 7 for n in [r['qty'] for r in rows])", True),
        ("len([r for r in rows if r['ok']])", len([r for r in ROWS if r["ok"]])),
        ("rows == rows and len(str(rows[0])) > 0", True),
        ("len(str([r['qty'] for r in rows]))", len(str([r["qty"] for r in ROWS]))),
    ],
)
def test_legitimate_work_on_a_large_probe_fits_the_budget(text: str, expected: Any) -> None:
    expression = parse_expression(text)
    run_bounded(lambda: expression.evaluate({"rows": ROWS}), trace=False)
    assert expression.evaluate({"rows": ROWS}) == expected


def test_each_evaluation_has_its_own_budget() -> None:
    expression = parse_expression("sum(1 for a in xs for b in xs)")
    variables = {"xs": list(range(300))}  # 90,000 iterations: under the budget once
    for _ in range(3):
        assert expression.evaluate(variables) == 90_000


# Hypothesis: whatever the text, parse and evaluate raise ExpressionError or nothing.

TOKENS = [
    *"x xs body rows s n d true null None len sum min max str int float round abs all any".split(),
    *"keys values items for in if else not and or is lambda __class__ _x".split(),
    *list("()[]{}.,:+-*/%<>=!'\"@~^|&\\#;"),
    *"** // == != <= >= := ... 0 1 -1 10 1000000 1e308 0.5 'a' \"k\" [0] .a".split(),
    " ",
    " ",
    "\n",
    "\x00",
]

VARIABLES: dict[str, Any] = {
    "x": 3,
    "xs": [1, 2, 3, [4, 5], "a", None],
    "body": {"a": {"k": [0, 1]}, "k": 2, "accepted": {"u": 1}},
    "rows": [{"k": 1, "a": "x"}, {"k": None}],
    "s": "abc",
    "n": 1000,
    "d": {1: "a", (1, 2): [3]},
}


def check_never_raises_other_errors(text: str) -> None:
    cpu = time.process_time()
    try:
        expression = parse_expression(text)
    except ExpressionError:
        return
    try:
        expression.evaluate_with_evidence(VARIABLES)
    except ExpressionError:
        pass
    assert time.process_time() - cpu < CPU_SECONDS
    for name in expression.names:  # free names are identifiers of the text, never functions
        assert name.isidentifier() and name in text
        assert name not in {"len", "sum", "str", "int", "true", "null", "None", "False"}


TOKEN_STRINGS = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
PRINTABLE_TEXT = st.text(alphabet=string.printable, max_size=60)
WELL_FORMED = st.recursive(
    st.sampled_from(["x", "n", "s", "xs", "body", "rows", "d", "1", "0", "'a'", "null", "[1, 2]"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([*"+-*/%", "//", "==", "<", " in ", " and "]), inner).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"
        ),
        st.tuples(
            st.sampled_from(["len", "sum", "str", "int", "float", "max", "min", "abs", "all"]),
            inner,
        ).map(lambda t: f"{t[0]}({t[1]})"),
        inner.map(lambda e: f"[v for v in {e}]"),
        inner.map(lambda e: f"{{v: v for v in {e}}}"),
        inner.map(lambda e: f"sum(1 for k, v in {e}.items())"),
        inner.map(lambda e: f"{e}[0]"),
        inner.map(lambda e: f"{e}.k"),
        inner.map(lambda e: f"{e} * n"),
        inner.map(lambda e: f"[{e}] * n"),
    ),
    max_leaves=12,
)


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(TOKEN_STRINGS)
def test_random_token_strings_raise_only_expression_error(text: str) -> None:
    check_never_raises_other_errors(text)


@settings(max_examples=200, deadline=None, database=None)
@given(PRINTABLE_TEXT)
def test_random_text_raises_only_expression_error(text: str) -> None:
    check_never_raises_other_errors(text)


@settings(max_examples=200, deadline=None, database=None)
@given(WELL_FORMED)
def test_random_well_formed_expressions_raise_only_expression_error(text: str) -> None:
    check_never_raises_other_errors(text)
