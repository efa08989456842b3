"""Does a response match what the OpenAPI document promises?

`check_response` lists every mismatch, in words: an undocumented status, a
missing required header, an undocumented content type, a body that is not
JSON or does not match its schema. `validate` is the small JSON-Schema
checker behind it: type (with `nullable`), enum, numeric bounds, string
length and pattern, array size and items, required and additional
properties, and anyOf/oneOf/allOf. It walks the value, not the schema, so
recursive schemas are fine.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from heisen.fuzz._openapi import Operation
from heisen.fuzz._schema import Schema, SchemaType

MAX_CHECK_DEPTH = 200


def check_response(
    operation: Operation, status: int, headers: Mapping[str, str], body: bytes | str | None
) -> list[str]:
    """Every way this response departs from `operation`'s documented responses."""
    spec = operation.response_for(status)
    if spec is None:
        return check_status(operation, status)
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    problems = [
        f"status {status}: required header {name!r} is missing"
        for name in spec.required_headers
        if name.lower() not in lowered
    ]
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else (body or b"")
    if not spec.content or not raw.strip():
        if any(schema is not None for schema in spec.content.values()) and not raw.strip():
            problems.append(
                f"status {status}: the body is empty, but {', '.join(spec.content)} is documented"
            )
        return problems
    content_type = lowered.get("content-type", "")
    media = _matching_media(content_type, list(spec.content))
    if media is None:
        problems.append(
            f"status {status}: content type {content_type or '(none)'!r} is not documented "
            f"(documented: {', '.join(spec.content)})"
        )
        return problems
    schema = spec.content[media]
    if schema is None or not _is_json(media):
        return problems
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        problems.append(f"status {status}: the body is not valid JSON ({exc})")
        return problems
    problems += [f"status {status}: {message}" for message in validate(schema, value, "body")]
    return problems


def check_status(operation: Operation, status: int) -> list[str]:
    """The one problem a status alone can show: it is not documented for `operation`."""
    if operation.response_for(status) is not None:
        return []
    documented = ", ".join(operation.responses) or "none"
    return [f"status {status} is not documented for {operation.key} (documented: {documented})"]


def validate(schema: Schema, value: Any, where: str = "$", depth: int = 0) -> list[str]:
    """Mismatches of `value` against `schema`, each starting with its location."""
    if depth > MAX_CHECK_DEPTH:
        return [f"{where}: nested more than {MAX_CHECK_DEPTH} levels deep; not checked further"]
    if schema.enum == ():
        return [f"{where}: no value is allowed here"]
    problems: list[str] = []
    for part in schema.all_of:
        problems += validate(part, value, where, depth + 1)
    if schema.any_of and not any(
        not validate(alt, value, where, depth + 1) for alt in schema.any_of
    ):
        if not (value is None and schema.nullable):
            problems.append(
                f"{where}: {_show(value)} matches none of the {len(schema.any_of)} allowed schemas"
            )
    if schema.one_of:
        matching = sum(1 for alt in schema.one_of if not validate(alt, value, where, depth + 1))
        if matching != 1 and not (value is None and schema.nullable):
            problems.append(
                f"{where}: {_show(value)} matches {matching} of the oneOf schemas, not exactly one"
            )
    if value is None and schema.nullable:
        return problems
    if schema.enum is not None and not any(_same(value, choice) for choice in schema.enum):
        choices = ", ".join(_show(choice) for choice in schema.enum)
        problems.append(f"{where}: {_show(value)} is not one of {choices}")
    if schema.type is not None and not _has_type(value, schema.type):
        problems.append(
            f"{where}: expected {schema.type.value}, got {_json_type(value)} {_show(value)}"
        )
        return problems
    if _is_number(value):
        problems += _check_number(schema, value, where)
    elif isinstance(value, str):
        problems += _check_string(schema, value, where)
    elif isinstance(value, list):
        if schema.min_items is not None and len(value) < schema.min_items:
            problems.append(f"{where}: {len(value)} items, fewer than minItems {schema.min_items}")
        if schema.max_items is not None and len(value) > schema.max_items:
            problems.append(f"{where}: {len(value)} items, more than maxItems {schema.max_items}")
        if schema.items is not None:
            for index, item in enumerate(value):
                problems += validate(schema.items, item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, dict):
        problems += _check_object(schema, value, where, depth)
    return problems


def _check_number(schema: Schema, value: float, where: str) -> list[str]:
    problems = []
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value} is not a JSON number"]
    if schema.minimum is not None:
        if value < schema.minimum or (schema.exclusive_minimum and value == schema.minimum):
            word = "greater than" if schema.exclusive_minimum else "at least"
            problems.append(
                f"{where}: {_show(value)} is below the minimum (must be {word} {schema.minimum:g})"
            )
    if schema.maximum is not None:
        if value > schema.maximum or (schema.exclusive_maximum and value == schema.maximum):
            word = "less than" if schema.exclusive_maximum else "at most"
            problems.append(
                f"{where}: {_show(value)} is above the maximum (must be {word} {schema.maximum:g})"
            )
    return problems


def _check_string(schema: Schema, value: str, where: str) -> list[str]:
    problems = []
    if schema.min_length is not None and len(value) < schema.min_length:
        problems.append(
            f"{where}: {len(value)} characters, fewer than minLength {schema.min_length}"
        )
    if schema.max_length is not None and len(value) > schema.max_length:
        problems.append(
            f"{where}: {len(value)} characters, more than maxLength {schema.max_length}"
        )
    if schema.pattern is not None and re.search(schema.pattern, value) is None:
        problems.append(f"{where}: {_show(value)} does not match the pattern {schema.pattern!r}")
    return problems


def _check_object(schema: Schema, value: Mapping[str, object], where: str, depth: int) -> list[str]:
    problems = [
        f"{where}: required property {name!r} is missing"
        for name in sorted(schema.required)
        if name not in value
    ]
    for key, item in value.items():
        child = schema.properties.get(key)
        if child is not None:
            problems += validate(child, item, f"{where}.{key}", depth + 1)
        elif schema.additional_properties is False:
            problems.append(
                f"{where}: property {key!r} is not allowed (additionalProperties is false)"
            )
        elif isinstance(schema.additional_properties, Schema):
            problems += validate(schema.additional_properties, item, f"{where}.{key}", depth + 1)
    return problems


def _has_type(value: Any, kind: SchemaType) -> bool:
    if kind is SchemaType.INTEGER:
        return _is_number(value) and (isinstance(value, int) or value.is_integer())
    if kind is SchemaType.NUMBER:
        return _is_number(value)
    if kind is SchemaType.STRING:
        return isinstance(value, str)
    if kind is SchemaType.BOOLEAN:
        return isinstance(value, bool)
    if kind is SchemaType.ARRAY:
        return isinstance(value, list)
    return isinstance(value, dict)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(left: Any, right: Any) -> bool:
    """JSON equality: `1 == True` in Python, but not in JSON."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _show(value: Any) -> str:
    text = (
        json.dumps(value, ensure_ascii=True, default=str)
        if not isinstance(value, float)
        else repr(value)
    )
    return text if len(text) <= 60 else text[:57] + "..."


def _matching_media(content_type: str, documented: list[str]) -> str | None:
    actual = content_type.split(";")[0].strip().lower()
    for media in documented:
        wanted = media.split(";")[0].strip().lower()
        if wanted in ("*/*", actual) or (wanted.endswith("/*") and actual.startswith(wanted[:-1])):
            return media
    return None


def _is_json(media: str) -> bool:
    base = media.split(";")[0].strip().lower()
    return base == "application/json" or base.endswith("+json") or base == "*/*"
