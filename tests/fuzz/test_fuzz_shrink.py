from __future__ import annotations

import math
from typing import Any

from heisen.fuzz._schema import FieldSpec, schema_from_fields
from heisen.fuzz._shrink import shrink
from heisen.fuzz._values import nested_lists

SCHEMA = schema_from_fields(
    {"user": FieldSpec(type="string"), "qty": FieldSpec(type="integer", minimum=1, maximum=10)}
)


def big_qty(payload: Any) -> bool:
    qty = payload.get("qty") if isinstance(payload, dict) else None
    return type(qty) is int and qty > 2147483647


def long_user(payload: Any) -> bool:
    user = payload.get("user") if isinstance(payload, dict) else None
    return isinstance(user, str) and len(user) > 1000


def test_int64_quantity_shrinks_to_the_int32_boundary_and_drops_the_rest() -> None:
    original = {"user": "alice", "qty": 9223372036854775807, "note": "x" * 500, "tags": ["a", "b"]}
    result = shrink(original, big_qty)
    assert result.shrunk == {"qty": 2147483648}
    assert result.original is original
    assert result.attempts <= 200


def test_long_string_shrinks_to_one_past_the_limit() -> None:
    result = shrink({"user": "A" * 1_000_000, "qty": 3, "extra": {"deep": [1, 2, 3]}}, long_user)
    assert result.shrunk == {"user": "A" * 1001}
    assert result.attempts < 60


def test_shrinking_is_deterministic_and_only_keeps_failing_candidates() -> None:
    seen: list[Any] = []

    def predicate(payload: Any) -> bool:
        seen.append(payload)
        return big_qty(payload)

    first = shrink({"user": "bob", "qty": 2**63, "x": 1}, predicate)
    calls = list(seen)
    seen.clear()
    second = shrink({"user": "bob", "qty": 2**63, "x": 1}, predicate)
    assert first == second and calls == seen
    assert big_qty(first.shrunk)


def test_numbers_move_toward_the_nearest_schema_boundary() -> None:
    def over_max(payload: Any) -> bool:
        return isinstance(payload, dict) and type(payload.get("qty")) is int and payload["qty"] > 10

    assert shrink({"user": "bob", "qty": 5_000_000}, over_max, schema=SCHEMA).shrunk == {"qty": 11}

    def not_positive(payload: Any) -> bool:
        return isinstance(payload, dict) and type(payload.get("qty")) is int and payload["qty"] < 1

    assert shrink({"user": "bob", "qty": -77}, not_positive).shrunk == {"qty": 0}


def test_floats_bisect_and_special_values_stay_when_they_matter() -> None:
    def huge(payload: Any) -> bool:
        return isinstance(payload.get("a"), float) and payload["a"] > 1e10

    result = shrink({"a": 1e308, "b": 2.5}, huge)
    assert set(result.shrunk) == {"a"} and 1e10 < result.shrunk["a"] < 1.0000001e10
    nan = shrink(
        {"a": math.nan, "b": "x"}, lambda p: isinstance(p.get("a"), float) and math.isnan(p["a"])
    )
    assert list(nan.shrunk) == ["a"] and math.isnan(nan.shrunk["a"])


def test_nesting_is_flattened_by_bisection() -> None:
    def deep(payload: Any) -> bool:
        depth = 0
        value = payload.get("x") if isinstance(payload, dict) else None
        while isinstance(value, list):
            depth += 1
            value = value[0] if value else None
        return depth >= 10

    result = shrink({"user": "bob", "x": nested_lists(2000)}, deep)
    assert result.shrunk == {"x": nested_lists(10)}


def test_strings_lose_irrelevant_characters() -> None:
    result = shrink({"user": "alice\u202egnp.exe"}, lambda p: "\u202e" in str(p.get("user", "")))
    assert result.shrunk == {"user": "\u202e"}


def test_terminates_on_predicates_that_always_or_never_fail() -> None:
    payload = {"user": "bob" * 100, "qty": 10**30, "items": [{"a": [1, 2, {"b": "c"}]}] * 20}
    always = shrink(payload, lambda _: True)
    assert always.shrunk is None or always.shrunk in ({}, [], 0, "")
    never = shrink(payload, lambda _: False, max_attempts=50)
    assert never.shrunk is payload and never.attempts <= 50
    capped = shrink(
        payload, lambda p: type(p.get("qty")) is int and p["qty"] > 10**20, max_attempts=7
    )
    assert capped.attempts == 7 and capped.shrunk["qty"] > 10**20
