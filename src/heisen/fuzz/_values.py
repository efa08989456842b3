"""Values to send: realistic ones from Faker, and the edge-case catalogue.

Realistic values come from a Faker instance seeded per run and are chosen by
the field's `format` first (`uuid` → uuid4), then by its name (`email`,
`user` → user name, `name` → a person's name, …). Edge cases are listed per
field by `edges()`; every `Edge` names its `EdgeKind`, so a run can say which
kinds it covered.

`encode_payload` writes a payload as a client on the wire would, including
what strict JSON forbids but real clients send anyway: `NaN`, `Infinity`,
lone surrogates (escaped as `\\ud800`). It is iterative, so nesting deeper
than Python's recursion limit still encodes.
"""

from __future__ import annotations

import base64
import enum
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from heisen.fuzz._schema import Schema, SchemaType

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
DEFAULT_MAX_STRING_BYTES = 64 * 1024
DEFAULT_NESTING_DEPTH = 256
MAX_VALID_DEPTH = 6


class EdgeKind(enum.StrEnum):
    VALID = "valid"
    BOUNDARY = "boundary"
    FLOAT = "float"
    NULL = "null"
    MISSING = "missing"
    EXTRA = "extra"
    EMPTY = "empty"
    LONG = "long"
    UNICODE = "unicode"
    WRONG_TYPE = "wrong_type"
    NESTING = "nesting"
    ENUM = "enum"
    FORMAT = "format"
    LENGTH = "length"
    COMBINED = "combined"


@dataclass(frozen=True)
class Edge:
    kind: EdgeKind
    label: str
    value: Any


UNICODE_EDGES: tuple[tuple[str, str], ...] = (
    ("combining marks", "e" + "\u0301\u0308\u0327" * 16),
    ("right-to-left override", "user\u202egnp.exe"),
    ("emoji", "\U0001f600\U0001f44d\U0001f3fd"),
    ("zero-width joiner sequence", "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"),
    ("zero-width space and BOM", "\ufeffa\u200bb"),
    ("NUL byte", "a\x00b"),
    ("lone high surrogate", "\ud800"),
    ("lone low surrogate", "x\udfffy"),
    ("homoglyph (Cyrillic a)", "\u0430dmin"),
    ("case mapping that grows", "\u00df\ufb03"),
    ("astral CJK", "\U0002070e"),
)

FLOAT_EDGES: tuple[tuple[str, float], ...] = (
    ("NaN", float("nan")),
    ("Infinity", float("inf")),
    ("-Infinity", float("-inf")),
    ("-0.0", -0.0),
    ("1e308", 1e308),
    ("subnormal 5e-324", 5e-324),
)

# Field name fragments → Faker provider, checked in this order (so `user_email` is an email).
_BY_NAME: tuple[tuple[tuple[str, ...], str], ...] = (
    (("email", "mail"), "email"),
    (("username", "user", "login", "handle", "nick"), "user_name"),
    (("firstname", "first", "given"), "first_name"),
    (("lastname", "last", "surname", "family"), "last_name"),
    (("name", "fullname", "customer", "owner", "author"), "name"),
    (("phone", "mobile", "tel"), "phone_number"),
    (("street", "address"), "street_address"),
    (("city", "town"), "city"),
    (("country",), "country"),
    (("zip", "zipcode", "postcode", "postal"), "postcode"),
    (("company", "organization", "org"), "company"),
    (("url", "website", "homepage", "link", "uri"), "url"),
    (("ip",), "ipv4"),
    (("currency",), "currency_code"),
    (("color", "colour"), "color_name"),
    (("password", "secret"), "password"),
    (("title", "subject"), "catch_phrase"),
    (("description", "comment", "note", "message", "text", "bio"), "sentence"),
    (("uuid", "guid"), "uuid4"),
)
_QUANTITY = ("qty", "quantity", "count", "amount", "seats", "tickets", "number")


def name_words(name: str) -> list[str]:
    """`userEmail`, `user_email`, `user-email` → ['user', 'email'] (and the joined form)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]
    return [*words, "".join(words)] if len(words) > 1 else words


class ValueFactory:
    """Realistic values and edge cases for one run, seeded."""

    def __init__(self, seed: int, *, max_string_bytes: int, nesting_depth: int) -> None:
        from faker import Faker  # slow to import: only when cases are made

        self.rng = random.Random(seed)
        self.faker = Faker("en_US")
        self.faker.seed_instance(seed)
        self.max_string_bytes = max_string_bytes
        self.nesting_depth = nesting_depth

    # -- realistic values ---------------------------------------------------

    def valid(self, schema: Schema, name: str = "", depth: int = 0) -> Any:
        schema = merged(schema)
        if schema.enum is not None:
            return self.rng.choice(schema.enum) if schema.enum else None
        alternatives = schema.any_of or schema.one_of
        if alternatives and schema.type is None:
            return self.valid(self.rng.choice(alternatives), name, depth)
        kind = schema.type
        if kind is SchemaType.INTEGER:
            return self.integer(schema, name)
        if kind is SchemaType.NUMBER:
            low, high = schema.bounds()
            low = 0.0 if low is None else low
            high = low + 1000.0 if high is None else high
            return round(self.rng.uniform(low, high), 2)
        if kind is SchemaType.BOOLEAN:
            return self.rng.random() < 0.5
        if kind is SchemaType.ARRAY:
            low = schema.min_items or 0
            high = max(low, min(schema.max_items if schema.max_items is not None else 3, 3))
            if depth >= MAX_VALID_DEPTH:
                high = low
            size = self.rng.randint(max(low, 1 if high else 0), high) if high else low
            item = schema.items or Schema(type=SchemaType.STRING)
            return [self.valid(item, name, depth + 1) for _ in range(size)]
        if kind is SchemaType.OBJECT or schema.properties:
            if depth >= 2 * MAX_VALID_DEPTH:
                return {}  # a recursive schema that requires itself: stop here
            return {
                key: self.valid(child, key, depth + 1)
                for key, child in schema.properties.items()
                if key in schema.required or depth < MAX_VALID_DEPTH // 2
            }
        return self.string(schema, name)

    def integer(self, schema: Schema, name: str) -> int:
        low, high = schema.bounds()
        if low is None and high is None:
            small = any(word in _QUANTITY for word in name_words(name))
            low, high = (1, 5) if small else (0, 1000)
        elif low is None:
            low = high - 100  # type: ignore[operator]
        elif high is None:
            high = low + 100
        return self.rng.randint(int(low), int(high))  # type: ignore[arg-type]

    def string(self, schema: Schema, name: str) -> str:
        text = self.by_format(schema.format) if schema.format else None
        if text is None:
            provider = provider_for(name)
            text = str(getattr(self.faker, provider)()) if provider else self.faker.word()
        if schema.min_length is not None and len(text) < schema.min_length:
            text += "".join(self.faker.random_letters(schema.min_length - len(text)))
        if schema.max_length is not None:
            text = text[: schema.max_length]
        return text

    def by_format(self, fmt: str) -> str | None:
        fmt = fmt.lower()
        faker = self.faker
        if fmt == "email":
            return str(faker.email())
        if fmt == "uuid":
            return str(faker.uuid4())
        if fmt == "date-time":
            return str(faker.date_time(tzinfo=UTC).isoformat())
        if fmt == "date":
            return str(faker.date())
        if fmt == "time":
            return str(faker.time())
        if fmt in ("uri", "url", "iri", "uri-reference"):
            return str(faker.url())
        if fmt == "hostname":
            return str(faker.hostname())
        if fmt == "ipv4":
            return str(faker.ipv4())
        if fmt == "ipv6":
            return str(faker.ipv6())
        if fmt == "password":
            return str(faker.password())
        if fmt == "byte":
            return base64.b64encode(faker.binary(length=12)).decode("ascii")
        return None

    # -- edge cases ---------------------------------------------------------

    def edges(self, schema: Schema, name: str) -> list[Edge]:
        """Every edge case for one field, in catalogue order, without duplicates."""
        schema = merged(schema)
        found: list[Edge] = []
        if schema.type in (SchemaType.INTEGER, SchemaType.NUMBER):
            found += self.number_edges(schema)
        if schema.type is SchemaType.STRING or schema.type is None:
            found += self.string_edges(schema)
        if schema.type is SchemaType.ARRAY:
            found.append(Edge(EdgeKind.EMPTY, "empty array", []))
            item = self.valid(schema.items or Schema(type=SchemaType.STRING), name, MAX_VALID_DEPTH)
            many = max(1000, (schema.max_items or 0) + 1)
            found.append(Edge(EdgeKind.LONG, f"array of {many} items", [item] * many))
        if schema.type is SchemaType.OBJECT:
            found.append(Edge(EdgeKind.EMPTY, "empty object", {}))
        if schema.enum:
            found.append(Edge(EdgeKind.ENUM, "value outside the enum", _outside_enum(schema.enum)))
        # null is sent to nullable fields too: it conforms, so a 5xx on it is a plain bug
        found.append(Edge(EdgeKind.NULL, "null (nullable)" if schema.nullable else "null", None))
        found += [Edge(EdgeKind.WRONG_TYPE, label, value) for label, value in wrong_types(schema)]
        found.append(
            Edge(
                EdgeKind.NESTING,
                f"arrays nested {self.nesting_depth} deep",
                nested_lists(self.nesting_depth),
            )
        )
        return _unique(found)

    def number_edges(self, schema: Schema) -> Iterator[Edge]:
        low, high = schema.bounds()
        candidates: list[tuple[str, int | float]] = []
        if low is not None:
            candidates += [("the minimum", low), ("one below the minimum", low - 1)]
        if high is not None:
            candidates += [("the maximum", high), ("one above the maximum", high + 1)]
        candidates += [
            ("zero", 0),
            ("one", 1),
            ("minus one", -1),
            ("int32 max", INT32_MAX),
            ("int32 max + 1", INT32_MAX + 1),
            ("int32 min - 1", -(2**31) - 1),
            ("int64 max", INT64_MAX),
            ("int64 max + 1", INT64_MAX + 1),
            ("int64 min", INT64_MIN),
            ("int64 min - 1", INT64_MIN - 1),
        ]
        for label, value in candidates:
            if schema.type is SchemaType.INTEGER:
                value = int(value)
            yield Edge(EdgeKind.BOUNDARY, f"{value} ({label})", value)
        for label, value in FLOAT_EDGES:
            yield Edge(EdgeKind.FLOAT, label, value)
        if schema.type is SchemaType.INTEGER:
            yield Edge(EdgeKind.WRONG_TYPE, "fraction 1.5 for an integer", 1.5)

    def string_edges(self, schema: Schema) -> Iterator[Edge]:
        yield Edge(EdgeKind.EMPTY, "empty string", "")
        yield Edge(EdgeKind.EMPTY, "only whitespace", " \t\n")
        if schema.min_length:
            yield Edge(
                EdgeKind.LENGTH,
                f"{schema.min_length - 1} chars (min_length - 1)",
                "a" * (schema.min_length - 1),
            )
        if schema.max_length is not None:
            size = schema.max_length + 1
            yield Edge(EdgeKind.LENGTH, f"{size} chars (max_length + 1)", "a" * size)
        for size in sorted({min(1025, self.max_string_bytes), self.max_string_bytes}):
            yield Edge(EdgeKind.LONG, f"{size}-byte ASCII string", "A" * size)
        wide = max(1, self.max_string_bytes // 3)
        yield Edge(EdgeKind.LONG, f"{wide * 3}-byte string of 3-byte characters", "\u20ac" * wide)
        for label, text in UNICODE_EDGES:
            yield Edge(EdgeKind.UNICODE, label, text)
        if schema.format:
            yield Edge(
                EdgeKind.FORMAT,
                f"not a valid {schema.format}",
                "not-a-" + schema.format.replace(" ", "-"),
            )


def provider_for(name: str) -> str | None:
    words = name_words(name)
    for fragments, provider in _BY_NAME:
        if any(word in fragments for word in words):
            return provider
    return None


def merged(schema: Schema) -> Schema:
    """`schema` with the properties, required names and constraints of its `allOf` folded in."""
    if not schema.all_of:
        return schema
    parts, seen, queue = [], set(), [schema]
    while queue:
        part = queue.pop(0)
        if id(part) in seen:
            continue
        seen.add(id(part))
        parts.append(part)
        queue += list(part.all_of)
    properties: dict[str, Schema] = {}
    required: set[str] = set()
    fields: dict[str, Any] = {}
    for part in parts:
        properties.update(part.properties)
        required |= part.required
        for name in (
            "type",
            "format",
            "minimum",
            "maximum",
            "min_length",
            "max_length",
            "enum",
            "items",
        ):
            if fields.get(name) is None and getattr(part, name) is not None:
                fields[name] = getattr(part, name)
    return Schema(
        **fields,
        nullable=all(part.nullable for part in parts),
        properties=properties,
        required=frozenset(required),
        any_of=schema.any_of,
        one_of=schema.one_of,
    )


def wrong_types(schema: Schema) -> list[tuple[str, Any]]:
    kind = schema.type
    options: list[tuple[str, Any]] = []
    if kind in (SchemaType.INTEGER, SchemaType.NUMBER):
        options = [
            ("numeric string '1'", "1"),
            ("boolean true", True),
            ("array", [1]),
            ("object", {"value": 1}),
        ]
    elif kind is SchemaType.STRING:
        options = [
            ("integer", 0),
            ("boolean false", False),
            ("array", ["a"]),
            ("object", {"value": "a"}),
        ]
    elif kind is SchemaType.BOOLEAN:
        options = [("string 'true'", "true"), ("integer 1", 1), ("array", [True])]
    elif kind is SchemaType.ARRAY:
        options = [("string", "a"), ("object instead of array", {"0": "a"})]
    elif kind is SchemaType.OBJECT:
        options = [("array instead of object", []), ("string", "{}"), ("integer", 1)]
    return [(f"wrong type: {label}", value) for label, value in options]


def nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_objects(depth: int, key: str = "a") -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = {key: value}
    return value


def _outside_enum(choices: tuple[Any, ...]) -> Any:
    strings = [c for c in choices if isinstance(c, str)]
    if strings:
        return (
            strings[0].upper() + "_x"
            if strings[0].upper() in choices
            else strings[0].upper() or "x"
        )
    numbers = [c for c in choices if isinstance(c, int | float) and not isinstance(c, bool)]
    return max(numbers) + 1 if numbers else "__not_in_enum__"


def _unique(edges: list[Edge]) -> list[Edge]:
    seen: set[str] = set()
    result = []
    for edge in edges:
        key = encode_text(edge.value)
        if key not in seen:
            seen.add(key)
            result.append(edge)
    return result


# -- the wire encoding ------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT, _VALUE = 0, 1


def encode_payload(payload: Any) -> bytes:
    """The request body as sent: JSON text with `NaN`/`Infinity` tokens, UTF-8."""
    return encode_text(payload).encode("utf-8")


def encode_text(payload: Any) -> str:
    out: list[str] = []
    stack: list[tuple[int, Any]] = [(_VALUE, payload)]
    while stack:
        tag, item = stack.pop()
        if tag == _TEXT:
            out.append(item)
        elif isinstance(item, dict):
            if not item:
                out.append("{}")
                continue
            out.append("{")
            stack.append((_TEXT, "}"))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, value = entries[index]
                stack.append((_VALUE, value))
                stack.append((_TEXT, _string(str(key)) + ":"))
                if index:
                    stack.append((_TEXT, ","))
        elif isinstance(item, list | tuple):
            if not item:
                out.append("[]")
                continue
            out.append("[")
            stack.append((_TEXT, "]"))
            for index in range(len(item) - 1, -1, -1):
                stack.append((_VALUE, item[index]))
                if index:
                    stack.append((_TEXT, ","))
        else:
            out.append(_scalar(item))
    return "".join(out)


def decode_payload(data: bytes | str) -> Any:
    """Read back what `encode_payload` wrote (NaN, Infinity and lone surrogates included)."""
    return json.loads(data)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value: {value!r}")


def _string(text: str) -> str:
    quoted: str = json.encoder.encode_basestring(text)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)
