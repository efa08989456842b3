"""Malformed OpenAPI documents: always a located PipelineError (JSON path, YAML line), never a traceback."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_servers import TICKETING_OPENAPI

import mutations
from heisen._yaml import YamlDocument
from heisen.errors import PipelineError, UsageError
from heisen.fuzz._openapi import find_operation, load_openapi, parse_openapi

TICKETING = TICKETING_OPENAPI.read_text()
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 2**70, 1e400, float("nan"), "", "x", "[a-", [], {}, [1], {"a": 1},
    {"$ref": "#/nowhere"}, {"$ref": "http://example.com/x"}, {"$ref": 5}, {"type": "integr"},
]  # fmt: skip
EXTRA_KEYS: list[Any] = ["$ref", "type", "items", 5]


def body(schema: str) -> str:
    """A document whose one operation takes `schema` (YAML flow text) as its JSON body."""
    return (
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    post:\n"
        "      requestBody:\n        content:\n          application/json:\n"
        f"            schema: {schema}\n      responses:\n        '200': {{description: ok}}\n"
    )


def with_components(schemas: str, schema: str) -> str:
    return body(schema) + f"components:\n  schemas:\n{schemas}"


SCHEMA = "paths./x.post.requestBody.content.application/json.schema"
YAML_CASES = {
    "empty file": ("", "", "must be a mapping"),
    "a list at the top": ("- openapi\n", "", "must be a mapping"),
    "Swagger 2.0": ("swagger: '2.0'\npaths: {}\n", "swagger", "Swagger 2.0"),
    "an unknown version": ("openapi: 2.5\npaths: {}\n", "openapi", "3.0.x or 3.1.x"),
    "paths is a list": ("openapi: 3.0.3\npaths: [/x]\n", "paths", "mapping of routes"),
    "a route without a slash": ("openapi: 3.0.3\npaths: {x: {}}\n", "paths.x", "start with '/'"),
    "a path item that is a list": (
        "openapi: 3.0.3\npaths: {/x: [get]}\n",
        "paths./x",
        "mapping of methods",
    ),
    "an operation that is a string": (
        "openapi: 3.0.3\npaths: {/x: {post: yes}}\n",
        "paths./x.post",
        "must be a mapping",
    ),
    "parameters is a mapping": (
        "openapi: 3.0.3\npaths: {/x: {get: {parameters: {a: 1}}}}\n",
        "paths./x.get.parameters",
        "must be a list",
    ),
    "a parameter without a name": (
        "openapi: 3.0.3\npaths: {/x: {get: {parameters: [{in: query}]}}}\n",
        "paths./x.get.parameters[0].name",
        "needs a `name`",
    ),
    "a parameter in the body": (
        "openapi: 3.0.3\npaths: {/x: {get: {parameters: [{name: a, in: body}]}}}\n",
        "paths./x.get.parameters[0].in",
        "path, query, header or cookie",
    ),
    "a request body without content": (
        "openapi: 3.0.3\npaths: {/x: {post: {requestBody: {required: true}}}}\n",
        "paths./x.post.requestBody",
        "`content`",
    ),
    "responses is a list": (
        "openapi: 3.0.3\npaths: {/x: {get: {responses: [200]}}}\n",
        "paths./x.get.responses",
        "mapping of status codes",
    ),
    "a status that is no status": (
        "openapi: 3.0.3\npaths: {/x: {get: {responses: {'20': {description: x}}}}}\n",
        "paths./x.get.responses.20",
        "not a status code",
    ),
    "a schema that is a number": (body("5"), SCHEMA, "must be a mapping"),
    "an unknown type": (body("{type: integr}"), f"{SCHEMA}.type", "did you mean 'integer'"),
    "properties is a list": (body("{type: object, properties: [a]}"), f"{SCHEMA}.properties", "mapping"),
    "required is a string": (body("{type: object, required: a}"), f"{SCHEMA}.required", "list"),
    "a pattern that does not compile": (body("{type: string, pattern: '[a-'}"), f"{SCHEMA}.pattern", "regular expression"),
    "a minimum that is a string": (body("{type: integer, minimum: one}"), f"{SCHEMA}.minimum", "finite number"),
    "an infinite maximum": (body("{type: number, maximum: .inf}"), f"{SCHEMA}.maximum", "finite number"),
    "a minimum above the maximum": (body("{type: integer, minimum: 9, maximum: 1}"), f"{SCHEMA}.minimum", "above"),
    "a minLength above the maxLength": (body("{type: string, minLength: 9, maxLength: 1}"), f"{SCHEMA}.minLength", "above"),
    "a negative maxItems": (body("{type: array, maxItems: -1}"), f"{SCHEMA}.maxItems", "non-negative"),
    "enum is a string": (body("{type: string, enum: abc}"), f"{SCHEMA}.enum", "list"),
    "allOf is empty": (body("{allOf: []}"), f"{SCHEMA}.allOf", "non-empty list"),
    "a $ref to nowhere": (body("{$ref: '#/components/schemas/Nope'}"), f"{SCHEMA}.$ref", "does not resolve"),
    "a $ref to a file that is not there": (body("{$ref: 'other.yaml#/A'}"), f"{SCHEMA}.$ref", "cannot read"),
    "a $ref to a web address": (body("{$ref: 'https://example.com/a.yaml#/A'}"), f"{SCHEMA}.$ref", "only local references"),
    "a $ref that is a number": (body("{$ref: 5}"), f"{SCHEMA}.$ref", "only local references"),
    "a $ref to itself": (
        with_components("    A: {$ref: '#/components/schemas/A'}\n", "{$ref: '#/components/schemas/A'}"),
        "components.schemas.A.$ref",
        "circular $ref",
    ),
    "two $refs to each other": (
        with_components(
            "    A: {$ref: '#/components/schemas/B'}\n    B: {$ref: '#/components/schemas/A'}\n",
            "{$ref: '#/components/schemas/A'}",
        ),
        "components.schemas.B.$ref",
        "circular $ref",
    ),
    "a request body that refers to itself": (
        "openapi: 3.0.3\npaths: {/x: {post: {requestBody: {$ref: '#/components/requestBodies/B'}}}}\n"
        "components: {requestBodies: {B: {$ref: '#/components/requestBodies/B'}}}\n",
        "components.requestBodies.B.$ref",
        "circular $ref",
    ),
    "deep nesting": ("openapi: 3.0.3\nx: " + "[" * 100 + "]" * 100 + "\npaths: {}\n", "", "nests deeper"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "path", "fragment"), YAML_CASES.values(), ids=list(YAML_CASES))
def test_a_malformed_yaml_document_is_refused_at_its_path_and_line(
    tmp_path: Path, text: str, path: str, fragment: str
):
    target = tmp_path / "openapi.yaml"
    target.write_text(text)
    with pytest.raises(PipelineError) as raised:
        load_openapi(target)
    assert raised.value.source == str(target)
    located = [p for p in raised.value.problems if p.path == path or (not path and not p.path)]
    assert located, [str(p) for p in raised.value.problems]
    assert any(fragment in p.message for p in located), [str(p) for p in located]
    if path:
        assert all(p.line is not None for p in located)


def test_a_recursive_schema_is_not_an_error(tmp_path: Path):
    target = tmp_path / "openapi.yaml"
    target.write_text(
        with_components(
            "    Node: {type: object, properties: {children: {type: array, items: {$ref: '#/components/schemas/Node'}}}}\n"
            "    Loop: {allOf: [{$ref: '#/components/schemas/Loop'}]}\n",
            "{type: object, properties: {n: {$ref: '#/components/schemas/Node'}, l: {$ref: '#/components/schemas/Loop'}}}",
        )
    )
    (operation,) = load_openapi(target).operations
    assert operation.body is not None


JSON_BASE = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {}}}}}}},
}


def test_json_documents_give_the_line_of_a_syntax_error_and_the_path_of_a_bad_part(
    tmp_path: Path,
):
    target = tmp_path / "openapi.json"
    target.write_text('{\n  "openapi": "3.0.3",\n  "paths": {\n    "/x": {,}\n  }\n}\n')
    with pytest.raises(PipelineError) as raised:
        load_openapi(target)
    (problem,) = raised.value.problems
    assert (problem.line, problem.column) == (4, 12)
    assert "invalid JSON" in problem.message

    document = copy.deepcopy(JSON_BASE)
    document["paths"]["/x"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "type": "number",
        "minimum": float("nan"),
    }
    target.write_text(json.dumps(document))  # writes the NaN token json.loads accepts
    with pytest.raises(PipelineError) as raised:
        load_openapi(target)
    (problem,) = raised.value.problems
    assert problem.path == f"{SCHEMA}.minimum"
    assert "finite number" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 100_000 + "1" + "}" * 100_000,
        '\x00\x01{"openapi"',
    ],
    ids=["empty", "deep arrays", "deep objects", "binary"],
)
def test_unreadable_json_is_refused_with_a_location(tmp_path: Path, text: str):
    target = tmp_path / "openapi.json"
    target.write_text(text)
    with pytest.raises(PipelineError) as raised:
        load_openapi(target)
    (problem,) = raised.value.problems
    assert problem.line is not None


def test_invalid_utf8_json_is_refused(tmp_path: Path):
    target = tmp_path / "openapi.json"
    target.write_bytes(b'{"openapi": "\xff"}')
    with pytest.raises(PipelineError, match="not UTF-8"):
        load_openapi(target)


def test_a_chain_of_thousands_of_refs_is_refused_not_a_recursion_error(tmp_path: Path):
    schemas = {
        f"S{i}": {
            "type": "object",
            "properties": {"next": {"$ref": f"#/components/schemas/S{i + 1}"}},
        }
        for i in range(3000)
    }
    schemas["S3000"] = {"type": "integer"}
    document = copy.deepcopy(JSON_BASE)
    document["paths"]["/x"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/S0"
    }
    document["components"] = {"schemas": schemas}
    target = tmp_path / "openapi.json"
    target.write_text(json.dumps(document))
    with pytest.raises(PipelineError, match="nest too deeply"):
        load_openapi(target)


def test_an_operation_the_document_lacks_is_a_usage_error_listing_the_operations():
    document = load_openapi(TICKETING_OPENAPI)
    with pytest.raises(UsageError) as raised:
        find_operation(document, "POST /x")
    assert "has no operation 'POST /x'" in str(raised.value)
    assert "POST /events/{event_id}/checkout" in str(raised.value)


def test_operations_match_concrete_requests_by_method_and_path_template():
    (operation,) = [
        op
        for op in load_openapi(TICKETING_OPENAPI).operations
        if op.key == "POST /events/{event_id}/checkout"
    ]
    assert operation.matches("post", "/events/concert/checkout")
    assert not operation.matches("GET", "/events/concert/checkout")
    assert not operation.matches("POST", "/events/a/b/checkout")


def mutate(data: Any, rng: random.Random) -> Any:
    """`data` with one to three nodes replaced, removed, or given an extra key."""
    return mutations.mutate(data, rng, ODD_VALUES, EXTRA_KEYS)


@pytest.mark.slow
def test_hundreds_of_mutations_end_in_a_document_or_a_located_error():
    base = yaml.safe_load(TICKETING)
    rng = random.Random(19)
    refused = 0
    for _ in range(400):
        try:
            parse_openapi(YamlDocument(source="mutated.yaml", data=mutate(base, rng)))
        except PipelineError as error:
            refused += 1
            assert error.problems and all(p.message for p in error.problems)
    assert refused > 100  # the mutations do break the document
