"""WireMock's string match operators, compiled once into predicates.

A spec such as `{"equalTo": "x", "caseInsensitive": true}` becomes a
`ValueMatcher` whose `test(value)` answers for one header, query parameter,
cookie, path parameter or body (`None` when the value is absent).
Problems are reported through `report(path, message)` so a loader can collect
all of them before failing.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heisen._serialised import JsonObject
from heisen.errors import did_you_mean
from heisen.system.stub._jsonpath import JsonPathError, compile_jsonpath

Path = tuple[str | int, ...]
Report = Callable[[Path, str], None]
Test = Callable[[str | None], bool]

OPERATORS = (
    "equalTo",
    "contains",
    "doesNotContain",
    "matches",
    "doesNotMatch",
    "absent",
    "equalToJson",
    "matchesJsonPath",
    "and",
    "or",
)
MODIFIERS = ("caseInsensitive", "ignoreArrayOrder", "ignoreExtraElements")
UNSUPPORTED = (
    "binaryEqualTo",
    "equalToXml",
    "matchesXPath",
    "before",
    "after",
    "equalToDateTime",
    "hasExactly",
    "includes",
    "equalToNumber",
)


MAX_LOGICAL_NESTING = 16
"""and/or inside and/or: the loaders cap a document's depth, the admin API's JSON is not capped."""


@dataclass(frozen=True, slots=True)
class ValueMatcher:
    operator: str
    expected: Any
    test: Test

    def describe(self) -> str:
        if self.operator == "absent":
            return "[absent]" if self.expected else "[present]"
        return f"[{self.operator}] {self.expected if isinstance(self.expected, str) else json.dumps(self.expected)}"


def compile_matcher(spec: Any, path: Path, report: Report) -> ValueMatcher | None:
    if not isinstance(spec, dict):
        report(path, 'a match operator is an object such as {"equalTo": "value"}')
        return None
    if sum(part in ("and", "or") for part in path) > MAX_LOGICAL_NESTING:
        report(path, f"and/or match operators nest deeper than {MAX_LOGICAL_NESTING} levels")
        return None
    operators = [key for key in spec if key in OPERATORS]
    for key in spec:
        if key in UNSUPPORTED:
            report((*path, key), f"the {key!r} operator is not supported by heisen's stub")
            return None
        if key not in OPERATORS and key not in MODIFIERS:
            report(
                (*path, key), f"unknown match operator {key!r}{did_you_mean(str(key), OPERATORS)}"
            )
            return None
    if len(operators) != 1:
        report(path, f"exactly one match operator is needed, found {operators or 'none'}")
        return None
    operator = operators[0]
    expected = spec[operator]
    where = (*path, operator)
    fold = bool(spec.get("caseInsensitive", False))
    if operator in ("and", "or"):
        return _compile_logical(operator, expected, where, report)
    if operator == "absent":
        wanted = bool(expected)
        return ValueMatcher(operator, wanted, lambda v: (v is None) == wanted)
    if operator == "equalToJson":
        return _compile_equal_to_json(spec, expected, where, report)
    if operator == "matchesJsonPath":
        return _compile_json_path(expected, where, report)
    if not isinstance(expected, str):
        report(where, f"{operator} takes a string, not {type(expected).__name__}")
        return None
    return _compile_string(operator, expected, fold, where, report)


def _compile_string(
    operator: str, expected: str, fold: bool, where: Path, report: Report
) -> ValueMatcher | None:
    if operator in ("matches", "doesNotMatch"):
        try:
            pattern = re.compile(expected, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)
        except re.error as exc:
            report(where, f"invalid regular expression: {exc}")
            return None
        if operator == "matches":
            return ValueMatcher(
                operator, expected, lambda v: v is not None and pattern.fullmatch(v) is not None
            )
        return ValueMatcher(
            operator, expected, lambda v: v is not None and pattern.fullmatch(v) is None
        )
    wanted = expected.casefold() if fold else expected

    def norm(value: str) -> str:
        return value.casefold() if fold else value

    if operator == "equalTo":
        return ValueMatcher(operator, expected, lambda v: v is not None and norm(v) == wanted)
    if operator == "contains":
        return ValueMatcher(operator, expected, lambda v: v is not None and wanted in norm(v))
    return ValueMatcher(operator, expected, lambda v: v is not None and wanted not in norm(v))


def _compile_logical(
    operator: str, expected: Any, where: Path, report: Report
) -> ValueMatcher | None:
    if not isinstance(expected, list) or not expected:
        report(where, f"{operator} takes a non-empty list of match operators")
        return None
    parts = [compile_matcher(item, (*where, i), report) for i, item in enumerate(expected)]
    if any(p is None for p in parts):
        return None
    tests = [p.test for p in parts if p is not None]
    combine = all if operator == "and" else any
    return ValueMatcher(operator, expected, lambda v: combine(t(v) for t in tests))


@functools.lru_cache(maxsize=256)
def _parse_json(text: str) -> Any:
    return json.loads(text)


_INVALID = object()


def parse_json_or_invalid(text: str | None) -> Any:
    if text is None:
        return _INVALID
    try:
        return _parse_json(text)
    except (ValueError, RecursionError):
        return _INVALID


def _compile_equal_to_json(
    spec: JsonObject, expected: Any, where: Path, report: Report
) -> ValueMatcher | None:
    if isinstance(expected, str):
        from heisen._json import load_json_text
        from heisen.errors import PipelineError

        try:
            expected = load_json_text(expected, source="equalToJson").data
        except PipelineError as exc:
            problem = exc.problems[0]
            at = f" (line {problem.line}:{problem.column})" if problem.line else ""
            report(where, f"equalToJson holds no usable JSON: {problem.message}{at}")
            return None
    any_order = bool(spec.get("ignoreArrayOrder", False))
    extra = bool(spec.get("ignoreExtraElements", False))

    def test(value: str | None) -> bool:
        actual = parse_json_or_invalid(value)
        return actual is not _INVALID and json_equal(expected, actual, any_order, extra)

    return ValueMatcher("equalToJson", expected, test)


def _compile_json_path(expected: Any, where: Path, report: Report) -> ValueMatcher | None:
    inner: ValueMatcher | None = None
    if isinstance(expected, dict):
        expression = expected.get("expression")
        rest = {k: v for k, v in expected.items() if k != "expression"}
        if rest:
            inner = compile_matcher(rest, where, report)
            if inner is None:
                return None
    else:
        expression = expected
    if not isinstance(expression, str):
        report(
            where,
            'matchesJsonPath takes an expression string or {"expression": ..., <operator>: ...}',
        )
        return None
    try:
        compiled = compile_jsonpath(expression)
    except JsonPathError as exc:
        report(where, str(exc))
        return None
    inner_test = inner.test if inner else None

    def test(value: str | None) -> bool:
        document = parse_json_or_invalid(value)
        if document is _INVALID:
            return False
        found = compiled.evaluate(document)
        if inner_test is None:
            return bool(found)
        if not found:
            return inner_test(None)
        return any(inner_test(_as_text(item)) for item in found)

    return ValueMatcher("matchesJsonPath", expected, test)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def json_equal(expected: Any, actual: Any, any_order: bool, extra: bool) -> bool:
    """JSON equality with WireMock's two relaxations; numbers compare by value (1 == 1.0)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        if not extra and expected.keys() != actual.keys():
            return False
        return all(
            k in actual and json_equal(v, actual[k], any_order, extra) for k, v in expected.items()
        )
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if len(actual) != len(expected) and not (extra and len(actual) > len(expected)):
            return False
        if not any_order:
            if extra:
                return _subsequence(expected, actual, any_order, extra)
            return all(
                json_equal(e, a, any_order, extra) for e, a in zip(expected, actual, strict=True)
            )
        unused = list(actual)
        for item in expected:
            for j, candidate in enumerate(unused):
                if json_equal(item, candidate, any_order, extra):
                    del unused[j]
                    break
            else:
                return False
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def _subsequence(expected: list[Any], actual: list[Any], any_order: bool, extra: bool) -> bool:
    position = 0
    for item in expected:
        while position < len(actual) and not json_equal(item, actual[position], any_order, extra):
            position += 1
        if position == len(actual):
            return False
        position += 1
    return True
