"""Is a request body what the OpenAPI document allows? Checked by jsonschema.

The body schema is validated in place, as a `$ref` into the document, so
local refs (`#/components/schemas/Order`) resolve against the document and
relative ones (`common.yaml#/Money`) against the file it came from, through a
`referencing` registry that reads them on demand. The whole JSON Schema
vocabulary holds (`not`, `uniqueItems`…), and OpenAPI's `discriminator`
beside a `oneOf` or `anyOf` chooses the one alternative the body must match
by its property (through `mapping`, else by schema name), as OpenAPI says,
where plain JSON Schema would ask that exactly one alternative match, which
alternatives that differ only by the discriminator's value never do.
OpenAPI 3.0 documents are Draft 4 with `nullable: true`, which is rewritten
as a `null` type (and a `null` in an `enum`); 3.1 documents are Draft 2020-12.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from heisen.errors import PipelineError, UsageError

_JSON_MEDIA = ("application/json",)


def request_problems(openapi: Path, operation: str, payload: Any) -> list[str] | None:
    """What is wrong with `payload` as the body of `operation` (`POST /orders`); None when
    the operation declares no JSON body schema."""
    validator = _validator(openapi.resolve(), operation)
    if validator is None:
        return None
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or 'body'}: {error.message}"
        for error in validator.iter_errors(payload)
    ]


@functools.lru_cache(maxsize=32)
def _validator(openapi: Path, operation: str) -> Any:
    from jsonschema import Draft4Validator, Draft202012Validator, validators
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4, DRAFT202012

    document = _load(openapi)
    legacy = str(document.get("openapi", "3.1")).startswith("3.0")
    spec = DRAFT4 if legacy else DRAFT202012
    uri = openapi.as_uri()

    def retrieve(address: str) -> Resource[Any]:
        path = Path(unquote(urlsplit(address).path))
        return Resource.from_contents(_prepared(_load(path), legacy), default_specification=spec)

    pointer = _body_pointer(document, operation)
    if pointer is None:
        return None
    registry: Registry[Any] = Registry(retrieve=retrieve).with_resource(  # type: ignore[call-arg]
        uri, Resource.from_contents(_prepared(document, legacy), default_specification=spec)
    )
    base = Draft4Validator if legacy else Draft202012Validator
    keywords = {key: _discriminated(base.VALIDATORS[key]) for key in ("oneOf", "anyOf")}
    cls = validators.extend(base, keywords)
    return cls({"$ref": f"{uri}#{pointer}"}, registry=registry)


_Keyword = Callable[[Any, Any, Any, dict[str, Any]], Iterator[Any]]


def _discriminated(plain: _Keyword) -> _Keyword:
    """`oneOf`/`anyOf` that, beside a `discriminator`, validate the alternative it names."""

    def check(validator: Any, alternatives: Any, instance: Any, schema: dict[str, Any]) -> Any:
        from jsonschema import ValidationError

        discriminator = schema.get("discriminator")
        name = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
        if not isinstance(name, str) or not isinstance(instance, dict):
            yield from plain(validator, alternatives, instance, schema)
            return
        if name not in instance:
            yield ValidationError(f"{name!r} is required: it chooses the schema (discriminator)")
            return
        assert isinstance(discriminator, dict)
        chosen = _chosen(discriminator.get("mapping"), instance[name], alternatives)
        if chosen is None:
            yield ValidationError(
                f"{name} {instance[name]!r} names none of the schemas the discriminator allows"
            )
            return
        yield from validator.descend(instance, chosen)

    return check


def _chosen(mapping: Any, value: Any, alternatives: Any) -> Any:
    """The alternative a discriminator value names: through `mapping` (a `$ref` or a schema
    name), else the alternative whose `$ref` ends with that name; None when none does."""
    if not isinstance(value, str) or not isinstance(alternatives, list):
        return None
    target = mapping.get(value) if isinstance(mapping, dict) else None
    refs = [
        alt for alt in alternatives if isinstance(alt, dict) and isinstance(alt.get("$ref"), str)
    ]
    if isinstance(target, str):
        for alt in refs:
            if alt["$ref"] == target:
                return alt
        for alt in refs:
            if alt["$ref"].rsplit("/", 1)[-1] == target.rsplit("/", 1)[-1]:
                return alt
        return {"$ref": target} if "/" in target or "#" in target else None
    for alt in refs:
        if alt["$ref"].rsplit("/", 1)[-1] == value:
            return alt
    return None


def _body_pointer(document: dict[str, Any], operation: str) -> str | None:
    method, _, route = operation.partition(" ")
    node = (document.get("paths") or {}).get(route, {}).get(method.lower(), {})
    body = node.get("requestBody") if isinstance(node, dict) else None
    base = ["paths", route, method.lower(), "requestBody"]
    if isinstance(body, dict) and "$ref" in body and str(body["$ref"]).startswith("#/"):
        base = [
            unquote(p).replace("~1", "/").replace("~0", "~") for p in body["$ref"][2:].split("/")
        ]
        body = document
        for part in base:
            body = body.get(part, {}) if isinstance(body, dict) else {}
    if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
        return None
    for media, content in body["content"].items():
        base_media = media.split(";")[0].strip().lower()
        if (base_media in _JSON_MEDIA or base_media.endswith("+json")) and "schema" in content:
            parts = [*base, "content", media, "schema"]
            return "/" + "/".join(quote(p.replace("~", "~0").replace("/", "~1")) for p in parts)
    return None


def _load(path: Path) -> Any:
    from heisen._json import load_json_file
    from heisen._yaml import load_yaml_file

    try:
        loaded = load_json_file(path) if path.suffix.lower() == ".json" else load_yaml_file(path)
    except (OSError, PipelineError) as exc:
        raise UsageError(f"cannot read {path} for a $ref: {exc}") from exc
    return _plain(getattr(loaded, "data", loaded))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _prepared(node: Any, legacy: bool) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema says it; anything else unchanged."""
    if not legacy:
        return node
    if isinstance(node, list):
        return [_prepared(item, legacy) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {key: _prepared(value, legacy) for key, value in node.items()}
    if copy.pop("nullable", False) is True:
        kind = copy.get("type")
        if isinstance(kind, str):
            copy["type"] = [kind, "null"]
        if isinstance(copy.get("enum"), list) and None not in copy["enum"]:
            copy["enum"] = [*copy["enum"], None]
        if "$ref" in copy or "type" not in copy:
            ref_or_rest = copy
            copy = {"anyOf": [{"type": "null"}, ref_or_rest]}
    return copy
