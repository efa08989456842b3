from __future__ import annotations

import json
from pathlib import Path

import pytest

from heisen.errors import PipelineError, UsageError
from heisen.fuzz._cases import generate_cases
from heisen.fuzz._conformance import validate
from heisen.fuzz._openapi import find_operation, load_openapi
from heisen.fuzz._schema import SchemaType

RECURSIVE = """
openapi: 3.1.0
info: {title: tree, version: "1"}
paths:
  /nodes:
    post:
      parameters:
        - $ref: "#/components/parameters/Limit"
      requestBody:
        $ref: "#/components/requestBodies/NodeBody"
      responses:
        "201":
          $ref: "#/components/responses/Created"
components:
  parameters:
    Limit: {name: limit, in: query, required: false, schema: {type: integer, minimum: 1}}
  requestBodies:
    NodeBody:
      required: true
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Alias"}
  responses:
    Created:
      description: made
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Node"}
  schemas:
    Alias: {$ref: "#/components/schemas/Node"}
    Node:
      type: object
      required: [name]
      additionalProperties: false
      properties:
        name: {type: [string, "null"], maxLength: 8}
        weight: {type: number, exclusiveMinimum: 0}
        children:
          type: array
          items: {$ref: "#/components/schemas/Node"}
        parent: {$ref: "#/components/schemas/Alias"}
"""


def write(tmp_path: Path, text: str, name: str = "api.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ticketing_document_gives_the_checkout_operation(ticketing_openapi: Path) -> None:
    document = load_openapi(ticketing_openapi)
    operation = find_operation(document, "post /events/{event_id}/checkout")
    assert operation.operation_id == "checkout"
    assert operation.body is not None and operation.body_required
    qty = operation.body.properties["qty"]
    assert (qty.type, qty.minimum, qty.maximum) == (SchemaType.INTEGER, 1, 10)
    assert operation.body.required == {"user", "qty"}
    assert operation.body.additional_properties is False
    assert [p.name for p in operation.path_params] == ["event_id"]
    assert set(operation.responses) == {"201", "400", "404", "409"}
    assert find_operation(document, "checkout") is operation
    keys = {op.key for op in document.operations}
    assert {
        "POST /reset",
        "GET /health",
        "GET /events/{event_id}",
        "PUT /events/{event_id}",
        "GET /orders/{order_id}",
    } <= keys


def test_missing_operation_lists_the_available_ones(ticketing_openapi: Path) -> None:
    document = load_openapi(ticketing_openapi)
    with pytest.raises(UsageError) as caught:
        find_operation(document, "POST /orders")
    message = str(caught.value)
    assert "has no operation 'POST /orders'" in message
    assert "POST /events/{event_id}/checkout" in message and "GET /health" in message


def test_nested_and_recursive_refs_resolve_without_looping(tmp_path: Path) -> None:
    document = load_openapi(write(tmp_path, RECURSIVE))
    operation = find_operation(document, "POST /nodes")
    body = operation.body
    assert body is not None and body.ref == "#/components/schemas/Alias"
    children = body.properties["children"].items
    assert children is not None and children.properties["children"].items is children
    assert body.properties["name"].nullable and body.properties["name"].type is SchemaType.STRING
    weight = body.properties["weight"]
    assert weight.minimum == 0 and weight.exclusive_minimum
    assert [p.name for p in operation.query_params] == ["limit"]
    created = operation.responses["201"].content["application/json"]
    assert created is children
    tree = {"name": "root", "children": [{"name": None, "children": [{"name": "x", "extra": 1}]}]}
    assert validate(created, tree, "body") == [
        "body.children[0].children[0]: property 'extra' is not allowed (additionalProperties is false)"
    ]
    assert len(generate_cases(operation, seed=1, count=60)) == 60


def test_json_documents_load_too(tmp_path: Path, ticketing_openapi: Path) -> None:
    import yaml

    data = yaml.safe_load(ticketing_openapi.read_text())
    path = write(tmp_path, json.dumps(data), "api.json")
    assert len(load_openapi(path).operations) == 6
    broken = write(tmp_path, '{"openapi": "3.0.0",\n "paths": {,}}', "broken.json")
    with pytest.raises(PipelineError, match=r"line 2:"):
        load_openapi(broken)


def test_bad_documents_name_every_problem_with_its_path(tmp_path: Path) -> None:
    text = """\
openapi: 2.5
info: {title: bad, version: "1"}
paths:
  /a:
    post:
      parameters:
        - {name: id, in: body}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                qty: {type: integr}
                ref: {$ref: "#/components/schemas/Nope"}
      responses:
        "20x": {description: nope}
  /loop:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/A"}
components:
  schemas:
    A: {$ref: "#/components/schemas/B"}
    B: {$ref: "#/components/schemas/A"}
"""
    with pytest.raises(PipelineError) as caught:
        load_openapi(write(tmp_path, text))
    problems = {p.path: p for p in caught.value.problems}
    assert "expected an OpenAPI version 3.0.x or 3.1.x" in problems["openapi"].message
    assert problems["openapi"].line == 1
    assert "path, query, header or cookie" in problems["paths./a.post.parameters[0].in"].message
    qty_type = problems[
        "paths./a.post.requestBody.content.application/json.schema.properties.qty.type"
    ]
    assert "did you mean 'integer'?" in qty_type.message and qty_type.line == 14
    ref = problems["paths./a.post.requestBody.content.application/json.schema.properties.ref.$ref"]
    assert "no 'Nope' under components.schemas" in ref.message
    assert "not a status code" in problems["paths./a.post.responses.20x"].message
    assert any("circular $ref" in p.message for p in caught.value.problems)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- just a list", "must be a mapping"),
        ("swagger: '2.0'\npaths: {}", "Swagger 2.0 is not supported"),
        ("openapi: 3.0.0\npaths: [1]", "`paths` must be a mapping"),
        ("openapi: 3.0.0\npaths:\n  /x: {$ref: 'other.yaml#/x'}", "no such file"),
    ],
)
def test_documents_that_are_not_openapi_3(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(PipelineError, match=fragment):
        load_openapi(write(tmp_path, text))
