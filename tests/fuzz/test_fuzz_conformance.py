from __future__ import annotations

from pathlib import Path

import pytest

from heisen.fuzz._conformance import check_response, validate
from heisen.fuzz._openapi import Operation, find_operation, load_openapi
from heisen.fuzz._schema import Schema, SchemaType

JSON = {"Content-Type": "application/json; charset=utf-8"}


@pytest.fixture
def checkout(ticketing_openapi: Path) -> Operation:
    return find_operation(load_openapi(ticketing_openapi), "POST /events/{event_id}/checkout")


def test_a_conforming_response_has_no_problems(checkout: Operation) -> None:
    body = b'{"id": "o1", "event_id": "e1", "user": "bob", "qty": 2, "created_at": "2024-01-01T00:00:00Z"}'
    assert check_response(checkout, 201, JSON, body) == []
    assert (
        check_response(checkout, 409, {"content-type": "application/json"}, '{"error": "sold out"}')
        == []
    )


def test_undocumented_status(checkout: Operation) -> None:
    assert check_response(checkout, 500, {}, b"oops") == [
        "status 500 is not documented for POST /events/{event_id}/checkout (documented: 201, 400, 404, 409)"
    ]


def test_body_mismatches_are_listed_with_their_paths(checkout: Operation) -> None:
    body = b'{"id": 7, "event_id": "e1", "user": "", "qty": 0}'
    assert check_response(checkout, 201, JSON, body) == [
        "status 201: body.id: expected string, got integer 7",
        "status 201: body.user: 0 characters, fewer than minLength 1",
        "status 201: body.qty: 0 is below the minimum (must be at least 1)",
    ]
    assert check_response(checkout, 201, JSON, b'{"qty": 11}') == [
        "status 201: body: required property 'event_id' is missing",
        "status 201: body: required property 'id' is missing",
        "status 201: body: required property 'user' is missing",
        "status 201: body.qty: 11 is above the maximum (must be at most 10)",
    ]


def test_content_type_and_json_problems(checkout: Operation) -> None:
    assert check_response(checkout, 400, {"Content-Type": "text/html"}, b"<h1>bad</h1>") == [
        "status 400: content type 'text/html' is not documented (documented: application/json)"
    ]
    problems = check_response(checkout, 400, JSON, b"{not json")
    assert len(problems) == 1 and problems[0].startswith("status 400: the body is not valid JSON")
    assert check_response(checkout, 201, JSON, b"") == [
        "status 201: the body is empty, but application/json is documented"
    ]


def test_validator_subset() -> None:
    status = Schema(type=SchemaType.STRING, enum=("ok", "degraded"))
    assert validate(status, "ok") == []
    assert validate(status, "down") == ['$: "down" is not one of "ok", "degraded"']
    closed = Schema(
        type=SchemaType.OBJECT,
        properties={
            "n": Schema(type=SchemaType.INTEGER, nullable=True, maximum=5, exclusive_maximum=True)
        },
        additional_properties=False,
    )
    assert validate(closed, {"n": None}) == []
    assert validate(closed, {"n": 5.0, "z": 1}) == [
        "$.n: 5.0 is above the maximum (must be less than 5)",
        "$: property 'z' is not allowed (additionalProperties is false)",
    ]
    assert validate(Schema(type=SchemaType.INTEGER), True) == [
        "$: expected integer, got boolean true"
    ]
    assert validate(Schema(enum=(1,)), True) == ["$: true is not one of 1"]
    either = Schema(one_of=(Schema(type=SchemaType.INTEGER), Schema(type=SchemaType.NUMBER)))
    assert validate(either, 1.5) == []
    assert validate(either, 2) == ["$: 2 matches 2 of the oneOf schemas, not exactly one"]
    listed = Schema(
        type=SchemaType.ARRAY, items=Schema(type=SchemaType.STRING, pattern="^[a-z]+$"), max_items=2
    )
    assert validate(listed, ["ab", "C", "d"]) == [
        "$: 3 items, more than maxItems 2",
        "$[1]: \"C\" does not match the pattern '^[a-z]+$'",
    ]
