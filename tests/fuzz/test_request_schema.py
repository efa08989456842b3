"""Is a request body one the OpenAPI document allows? (`conforming` of a fuzz finding.)

Real documents on disk: a `$ref` into another file (and from there into a third), `not`,
`uniqueItems`, and a `oneOf` chosen by its `discriminator`, in OpenAPI 3.0 and 3.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from heisen.fuzz._request_schema import request_problems

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
      responses: {{"201": {{description: created}}}}
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
