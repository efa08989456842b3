"""Is a request body one the OpenAPI document allows? (`conforming` of a fuzz finding.)

Real documents on disk: a `$ref` into another file (and from there into a third), `not`,
`uniqueItems`, and a `oneOf` chosen by its `discriminator`, in OpenAPI 3.0 and 3.1; and the
`conforming` of the findings of a real fuzz run against such a document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fuzz_servers import serve

from heisen.errors import PipelineError
from heisen.fuzz._openapi import find_operation, load_openapi
from heisen.fuzz._request_schema import request_problems
from heisen.fuzz.adhoc import run_adhoc_fuzz

DOCUMENT = """\
openapi: {version}
info: {{title: request schemas, version: "1"}}
paths:
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {{$ref: "./schemas/order.yaml#/Order"}}
      responses: {{"201": {{description: created}}, "400": {{description: refused}}}}
  /pets:
    post:
      requestBody:
        content:
          application/json:
            schema: {{$ref: "#/components/schemas/Pet"}}
      responses: {{"201": {{description: created}}}}
  /health:
    get:
      responses: {{"200": {{description: up}}}}
components:
  schemas:
    Pet:
      oneOf: [{{$ref: "#/components/schemas/Cat"}}, {{$ref: "#/components/schemas/Dog"}}]
      discriminator:
        propertyName: kind
        mapping: {{cat: "#/components/schemas/Cat", hound: "#/components/schemas/Dog"}}
    Cat:
      type: object
      required: [kind, name]
      properties: {{kind: {{type: string}}, name: {{type: string}}, indoor: {{type: boolean}}}}
    Dog:
      type: object
      required: [kind, name]
      properties: {{kind: {{type: string}}, name: {{type: string}}, barks: {{type: integer, minimum: 0}}}}
"""

ORDER = """\
Order:
  type: object
  required: [user, total]
  properties:
    user: {type: string, minLength: 1, not: {enum: [root]}}
    total: {$ref: "./common.yaml#/Money"}
    tags: {type: array, items: {type: string}, uniqueItems: true}
"""

MONEY = """\
Money:
  type: object
  required: [amount]
  properties: {amount: {type: integer, minimum: 0}}
"""


@pytest.fixture(params=["3.0.3", "3.1.0"])
def openapi(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.yaml").write_text(ORDER)
    (tmp_path / "schemas" / "common.yaml").write_text(MONEY)
    path = tmp_path / "openapi.yaml"
    path.write_text(DOCUMENT.format(version=request.param))
    return path


GOOD_ORDER = {"user": "ann", "total": {"amount": 3}, "tags": ["a", "b"]}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (GOOD_ORDER, None),
        ({"user": "ann", "total": {"amount": 0}}, None),
        # the third file, reached from the second: Money's minimum holds
        ({**GOOD_ORDER, "total": {"amount": -1}}, "total.amount: -1 is less than the minimum"),
        ({**GOOD_ORDER, "total": {}}, "total: 'amount' is a required property"),
        ({**GOOD_ORDER, "user": "root"}, "user: 'root' should not be valid"),  # not
        ({**GOOD_ORDER, "tags": ["a", "a"]}, "tags: ['a', 'a'] has non-unique elements"),
    ],
)
def test_a_ref_to_another_file_with_not_and_unique_items(
    openapi: Path, body: dict[str, Any], problem: str | None
) -> None:
    problems = request_problems(openapi, "POST /orders", body)
    assert problems is not None
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem), problems


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"kind": "cat", "name": "tom"}, None),
        ({"kind": "hound", "name": "rex", "barks": 3}, None),
        # a cat and a dog look alike: the discriminator, not "exactly one", decides
        ({"kind": "cat", "name": "tom", "indoor": True}, None),
        # a hound is a Dog: its barks count, though the body would pass as a Cat
        ({"kind": "hound", "name": "rex", "barks": -1}, "barks: -1 is less than the minimum"),
        ({"kind": "cat", "name": "tom", "indoor": "yes"}, "indoor: 'yes' is not of type"),
        # "dog" is not in the mapping (only "hound" is), and no schema is named so
        ({"kind": "dog", "name": "rex"}, "body: kind 'dog' names none of the schemas"),
        ({"name": "rex"}, "body: 'kind' is required: it chooses the schema"),
    ],
)
def test_a_one_of_chosen_by_its_discriminator(
    openapi: Path, body: dict[str, Any], problem: str | None
) -> None:
    problems = request_problems(openapi, "POST /pets", body)
    assert problems is not None
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_without_a_mapping_the_discriminator_value_is_the_schema_name(tmp_path: Path) -> None:
    path = tmp_path / "openapi.yaml"
    text = DOCUMENT.format(version="3.0.3").replace(
        '        mapping: {cat: "#/components/schemas/Cat", hound: "#/components/schemas/Dog"}\n',
        "",
    )
    path.write_text(text)
    assert request_problems(path, "POST /pets", {"kind": "Dog", "name": "r", "barks": 1}) == []
    (problem,) = request_problems(path, "POST /pets", {"kind": "Dog", "name": "r", "barks": -1})
    assert problem.startswith("barks: -1 is less than the minimum")
    (problem,) = request_problems(path, "POST /pets", {"kind": "cat", "name": "t"})
    assert "names none of the schemas" in problem


def test_an_operation_without_a_json_body_is_not_judged(openapi: Path) -> None:
    assert request_problems(openapi, "GET /health", None) is None


def orders_app() -> web.Application:
    """Two bugs: an empty user (the document forbids it) and an amount past int32 (allowed)."""

    async def create(request: web.Request) -> web.Response:
        try:
            body: Any = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "not JSON"}, status=400)
        total = body.get("total") if isinstance(body, dict) else None
        if not isinstance(total, dict) or not isinstance(body.get("user"), str):
            return web.json_response({"error": "user and total are required"}, status=400)
        amount = total.get("amount")
        if body["user"] == "":
            return web.json_response({"error": "empty user"}, status=500)
        if type(amount) is int and amount > 2**31 - 1:
            return web.json_response({"error": "integer out of range"}, status=500)
        return web.json_response({"id": "1"}, status=201)

    app = web.Application()
    app.router.add_post("/orders", create)
    return app


def test_findings_say_whether_their_body_conforms_through_a_ref_to_another_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.yaml").write_text(ORDER)
    (tmp_path / "schemas" / "common.yaml").write_text(MONEY)
    spec = tmp_path / "openapi.yaml"
    spec.write_text(DOCUMENT.format(version="3.0.3"))
    with serve(orders_app) as url:
        result = run_adhoc_fuzz(
            spec, url, operation="POST /orders", cases=60, seed=4, run_dir=tmp_path / "runs" / "a"
        )
    (report,) = result.operations
    by_field = {failure.field: failure for failure in report.failures}
    assert set(by_field) == {"user", "total.amount"}, [f.signature for f in report.failures]
    assert by_field["user"].conforming is False  # "" is shorter than minLength 1
    assert by_field["total.amount"].conforming is True  # Money has no maximum: a plain bug


def test_the_loader_follows_refs_into_other_files(openapi: Path) -> None:
    body = find_operation(load_openapi(openapi), "POST /orders").body
    assert body is not None and body.required == frozenset({"user", "total"})
    money = body.properties["total"]  # schemas/order.yaml → schemas/common.yaml
    assert money.required == frozenset({"amount"}) and money.properties["amount"].minimum == 0


def test_files_that_refer_to_each_other_and_back_to_the_document(tmp_path: Path) -> None:
    (tmp_path / "tree.yaml").write_text(
        "Node:\n  type: object\n  properties:\n"
        "    children: {type: array, items: {$ref: '#/Node'}}\n"
        "    leaf: {$ref: './leaf.yaml#/Leaf'}\n"
    )
    (tmp_path / "leaf.yaml").write_text(
        "Leaf:\n  type: object\n  properties:\n"
        "    parent: {$ref: './tree.yaml#/Node'}\n"
        "    label: {$ref: './openapi.yaml#/components/schemas/Label'}\n"
    )
    spec = tmp_path / "openapi.yaml"
    spec.write_text(
        DOCUMENT.format(version="3.0.3")
        .replace("./schemas/order.yaml#/Order", "./tree.yaml#/Node")
        .replace("    Pet:\n", "    Label: {type: string, maxLength: 3}\n    Pet:\n", 1)
    )
    node = find_operation(load_openapi(spec), "POST /orders").body
    assert node is not None
    leaf = node.properties["leaf"]
    assert leaf.properties["parent"].properties.keys() == node.properties.keys()
    assert leaf.properties["label"].max_length == 3
    assert request_problems(spec, "POST /orders", {"leaf": {"label": "abc"}}) == []
    (problem,) = request_problems(spec, "POST /orders", {"children": [{"leaf": {"label": "abcd"}}]})
    assert problem.startswith("children.0.leaf.label: 'abcd' is too long")


def test_a_ref_to_a_missing_node_of_another_file_names_both(openapi: Path) -> None:
    text = openapi.read_text().replace("order.yaml#/Order", "order.yaml#/Ordre")
    openapi.write_text(text)
    with pytest.raises(PipelineError) as raised:
        load_openapi(openapi)
    (problem,) = raised.value.problems
    assert "no 'Ordre'" in problem.message and "order.yaml" in problem.message
    assert problem.line is not None  # the line of the $ref in the document
