from __future__ import annotations

import json
import math
import uuid

import pytest
from pydantic import ValidationError

from heisen.fuzz._cases import case_id, generate_cases
from heisen.fuzz._schema import FieldSpec, Schema, SchemaType, schema_from_fields
from heisen.fuzz._values import EdgeKind, decode_payload, encode_payload, nested_lists

CHECKOUT = schema_from_fields(
    {
        "user": FieldSpec(type="string"),
        "qty": FieldSpec(type="integer", minimum=1, maximum=10),
        "email": FieldSpec(type="string", format="email", required=False),
        "name": FieldSpec(type="string", min_length=2, max_length=100, required=False),
        "ref": FieldSpec(type="string", format="uuid", required=False),
        "price": FieldSpec(type="number", required=False),
        "tier": FieldSpec(type="string", enum=["gold", "silver"], required=False),
    }
)


def test_same_seed_same_cases_byte_for_byte() -> None:
    first = generate_cases(CHECKOUT, seed=42, count=150, max_string_bytes=4096)
    second = generate_cases(CHECKOUT, seed=42, count=150, max_string_bytes=4096)
    assert [(c.id, c.label, c.body) for c in first] == [(c.id, c.label, c.body) for c in second]
    other = generate_cases(CHECKOUT, seed=43, count=150, max_string_bytes=4096)
    assert [c.body for c in other] != [c.body for c in first]


def test_ids_hash_the_wire_encoding_and_are_unique() -> None:
    cases = generate_cases(CHECKOUT, seed=1, count=200, max_string_bytes=2048)
    assert len(cases) == 200
    assert len({c.id for c in cases}) == 200
    for case in cases[:20]:
        assert case.id == case_id(case.payload, case.path_params, case.query)
    assert case_id({"qty": 1}) == case_id({"qty": 1}) != case_id({"qty": 2})


def _values_of(cases: list, field: str) -> list:
    return [c.payload[field] for c in cases if isinstance(c.payload, dict) and field in c.payload]


def test_catalogue_covers_every_edge_kind() -> None:
    megabyte = 1024 * 1024
    cases = generate_cases(CHECKOUT, seed=3, count=400, max_string_bytes=megabyte)
    kinds = {c.kind for c in cases}
    assert kinds == set(EdgeKind), set(EdgeKind) - kinds
    qty = [v for v in _values_of(cases, "qty") if type(v) is int]
    for wanted in (0, 1, -1, 10, 11, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63)):
        assert wanted in qty, wanted
    floats = [v for v in _values_of(cases, "qty") if isinstance(v, float)]
    assert any(math.isnan(v) for v in floats)
    assert math.inf in floats and -math.inf in floats and 1e308 in floats and 5e-324 in floats
    assert any(v == 0 and math.copysign(1, v) < 0 for v in floats)
    users = [v for v in _values_of(cases, "user") if isinstance(v, str)]
    assert "" in users
    assert any(len(v) == megabyte for v in users)
    for fragment in ("\u0301", "\u202e", "\U0001f600", "\u200d", "\x00", "\ud800"):
        assert any(fragment in v for v in users), repr(fragment)
    assert None in _values_of(cases, "user")
    assert any(isinstance(c.payload, dict) and "qty" not in c.payload for c in cases)
    assert any(isinstance(c.payload, dict) and "is_admin" in c.payload for c in cases)
    assert any(isinstance(v, bool) for v in _values_of(cases, "qty"))
    assert "GOLD" in _values_of(cases, "tier")
    labels = " | ".join(c.label for c in cases)
    assert "qty: 2147483648 (int32 max + 1)" in labels
    assert "nested 256 deep" in labels


def test_short_runs_still_touch_many_kinds() -> None:
    cases = generate_cases(CHECKOUT, seed=5, count=15)
    assert len({c.kind for c in cases}) >= 10
    assert cases[0].kind is EdgeKind.VALID


def test_realistic_values_follow_names_and_formats() -> None:
    cases = generate_cases(CHECKOUT, seed=9, count=60)
    valid = [c.payload for c in cases if c.kind is EdgeKind.VALID]
    assert len(valid) >= 2
    for payload in valid:
        assert "@" in payload["email"]
        uuid.UUID(payload["ref"])
        assert " " in payload["name"]
        assert " " not in payload["user"] and payload["user"]
        assert 1 <= payload["qty"] <= 10
        assert payload["tier"] in ("gold", "silver")


def test_encoding_sends_what_real_clients_send() -> None:
    body = encode_payload(
        {"a": math.nan, "b": [math.inf, -math.inf, -0.0], "u": "\ud800x\u00e9", "n": "\x00"}
    )
    assert body == b'{"a":NaN,"b":[Infinity,-Infinity,-0.0],"u":"\\ud800x\xc3\xa9","n":"\\u0000"}'
    back = decode_payload(body)
    assert back["u"] == "\ud800x\u00e9" and math.isnan(back["a"])
    deep = encode_payload(nested_lists(5000))
    assert deep == b"[" * 5000 + b"]" * 5000
    assert json.loads(encode_payload({"k": [1, "two", None, True]})) == {
        "k": [1, "two", None, True]
    }


def test_field_specs_are_strict() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        FieldSpec.model_validate({"type": "integer", "minimun": 1})
    with pytest.raises(ValidationError, match="greater than maximum"):
        FieldSpec(type="integer", minimum=5, maximum=1)
    with pytest.raises(ValidationError):
        FieldSpec.model_validate({"type": "int"})
    nested = FieldSpec.model_validate(
        {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}
    ).to_schema()
    assert nested.properties["tags"].items is not None
    assert nested.properties["tags"].items.type is SchemaType.STRING


def test_recursive_schema_generation_terminates() -> None:
    node = Schema(type=SchemaType.OBJECT, required=frozenset({"name"}))
    node._fill(
        Schema(
            type=SchemaType.OBJECT,
            properties={"name": Schema(type=SchemaType.STRING), "child": node},
            required=frozenset({"name", "child"}),
        )
    )
    cases = generate_cases(node, seed=0, count=80)
    assert len(cases) == 80
