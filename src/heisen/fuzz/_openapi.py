"""Load an OpenAPI 3.0/3.1 document into operations the fuzzer can drive.

`load_openapi` reads JSON or YAML, resolves local `$ref`s (chains, nested
ones, and recursive schemas, which become a cyclic `Schema` graph instead of
an endless expansion) and refs into other files beside it (`_bundle`) and reports every problem at once as a `PipelineError`
naming the JSON path (and, for YAML, the line). Only what fuzzing needs is
kept: each operation's JSON request body, its path and query parameters and
its responses by status.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from heisen._json import load_json_file
from heisen._yaml import YamlDocument, YamlPath, format_path, load_yaml_file
from heisen.errors import PipelineError, Problem, UsageError, did_you_mean
from heisen.fuzz._schema import Schema, SchemaType

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_TEMPLATE = re.compile(r"{([^{}]+)}")


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    """`path`, `query`, `header` or `cookie`."""
    required: bool
    schema: Schema


@dataclass(frozen=True)
class ResponseSpec:
    status: str
    """As written in the document: `201`, `4XX` or `default`."""
    description: str = ""
    content: Mapping[str, Schema | None] = field(default_factory=dict)
    """Media type → schema (None when the media type declares none)."""
    required_headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str | None = None
    body: Schema | None = None
    body_required: bool = False
    body_media_type: str | None = None
    parameters: tuple[Parameter, ...] = ()
    responses: Mapping[str, ResponseSpec] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.location == "path")

    @property
    def query_params(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.location == "query")

    def matches(self, method: str, path: str) -> bool:
        """True when `METHOD /concrete/path` is a request to this operation."""
        parts = _TEMPLATE.split(self.path)[::2]
        pattern = "([^/]+)".join(re.escape(part) for part in parts)
        return method.upper() == self.method and re.fullmatch(pattern, path) is not None

    def response_for(self, status: int) -> ResponseSpec | None:
        """The documented response for `status`: exact code, then `5XX`, then `default`."""
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in self.responses:
                return self.responses[key]
        return None


@dataclass(frozen=True)
class OpenApiDocument:
    source: str
    version: str
    title: str
    operations: tuple[Operation, ...]


def load_openapi(path: Path) -> OpenApiDocument:
    """Load and check an OpenAPI document; every problem is reported at once."""
    from heisen.fuzz._bundle import bundle

    if path.suffix.lower() == ".json":
        document = load_json_file(path)
    else:
        document = load_yaml_file(path)
    return parse_openapi(bundle(document, path))


def parse_openapi(document: YamlDocument) -> OpenApiDocument:
    """Check and build an OpenAPI document already read; every problem is reported at once."""
    try:
        return _Builder(document).build()
    except RecursionError:
        # Text nesting is capped by the loaders; a long chain of distinct `$ref`s is not.
        message = "schemas nest too deeply (a chain of hundreds of $refs?); refusing to load it"
        raise PipelineError(document.source, [Problem("", message)]) from None


def find_operation(document: OpenApiDocument, wanted: str) -> Operation:
    """The operation named `METHOD /path` (or by its operationId)."""
    method, _, route = wanted.strip().partition(" ")
    key = f"{method.upper()} {route.strip()}"
    for operation in document.operations:
        if operation.key == key or operation.operation_id == wanted.strip():
            return operation
    names = [operation.key for operation in document.operations]
    message = f"{document.source} has no operation {wanted!r}{did_you_mean(key, names)}"
    listing = "\n".join(f"  {name}" for name in names) or "  (none)"
    raise UsageError(f"{message}\nAvailable operations:\n{listing}")


class _Builder:
    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.root: Any = document.data
        self.problems: list[Problem] = []
        self.schemas: dict[str, Schema] = {}
        self.building: set[str] = set()

    def problem(self, path: YamlPath, message: str) -> None:
        self.problems.append(self.document.problem(path, message))

    def build(self) -> OpenApiDocument:
        root = self.root
        if not isinstance(root, dict):
            self.problem(
                (), "an OpenAPI document must be a mapping with `openapi`, `info` and `paths`"
            )
            raise PipelineError(self.document.source, self.problems)
        version = root.get("openapi")
        if "swagger" in root and version is None:
            self.problem(
                ("swagger",), "Swagger 2.0 is not supported: convert the document to OpenAPI 3"
            )
        elif not isinstance(version, str) or not version.startswith(("3.0", "3.1")):
            self.problem(
                ("openapi",), f"expected an OpenAPI version 3.0.x or 3.1.x, found {version!r}"
            )
        info = root.get("info")
        title = str(info.get("title", "")) if isinstance(info, dict) else ""
        paths = root.get("paths")
        operations: list[Operation] = []
        if not isinstance(paths, dict):
            self.problem(("paths",), "`paths` must be a mapping of routes to operations")
        else:
            for route, item in paths.items():
                operations += self.path_item(str(route), item, ("paths", str(route)))
        if self.problems:
            raise PipelineError(self.document.source, self.problems)
        return OpenApiDocument(
            source=self.document.source,
            version=str(version),
            title=title,
            operations=tuple(operations),
        )

    # -- references -------------------------------------------------------

    def lookup(self, ref: Any, where: YamlPath) -> tuple[Any, YamlPath] | None:
        """The node a local `$ref` points to, or None after recording why it does not resolve."""
        if not isinstance(ref, str) or not ref.startswith("#"):
            self.problem(
                where, f"only local references ('#/components/...') are supported, not {ref!r}"
            )
            return None
        node: Any = self.root
        path: YamlPath = ()
        for raw in ref[1:].split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                at = format_path(path) or "the document root"
                self.problem(where, f"$ref {ref!r} does not resolve: no {part!r} under {at}")
                return None
            path = (*path, part)
        return node, path

    def deref(self, node: Any, path: YamlPath) -> tuple[Any, YamlPath] | None:
        """Follow a chain of `$ref`s to a non-reference object (not for schemas)."""
        seen: list[str] = []
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                self.problem((*path, "$ref"), f"circular $ref: {' → '.join([*seen, ref])}")
                return None
            seen.append(ref)
            found = self.lookup(ref, (*path, "$ref"))
            if found is None:
                return None
            node, path = found
        return node, path

    # -- paths and operations ---------------------------------------------

    def path_item(self, route: str, item: Any, path: YamlPath) -> list[Operation]:
        if not route.startswith("/"):
            self.problem(path, f"a path must start with '/', found {route!r}")
        found = self.deref(item, path)
        if found is None:
            return []
        item, path = found
        if not isinstance(item, dict):
            self.problem(path, "a path item must be a mapping of methods to operations")
            return []
        shared = self.parameters(item.get("parameters"), (*path, "parameters"))
        operations = []
        for method in METHODS:
            if method in item:
                operation = self.operation(route, method, item[method], (*path, method), shared)
                if operation is not None:
                    operations.append(operation)
        return operations

    def operation(
        self, route: str, method: str, node: Any, path: YamlPath, shared: list[Parameter]
    ) -> Operation | None:
        if not isinstance(node, dict):
            self.problem(path, "an operation must be a mapping")
            return None
        own = self.parameters(node.get("parameters"), (*path, "parameters"))
        merged = {(p.name, p.location): p for p in [*shared, *own]}
        for name in _TEMPLATE.findall(route):
            if (name, "path") not in merged:
                merged[(name, "path")] = Parameter(
                    name, "path", True, Schema(type=SchemaType.STRING)
                )
        body, body_required, media = None, False, None
        if "requestBody" in node:
            body, body_required, media = self.request_body(
                node["requestBody"], (*path, "requestBody")
            )
        responses: dict[str, ResponseSpec] = {}
        raw_responses = node.get("responses", {})
        if not isinstance(raw_responses, dict):
            self.problem(
                (*path, "responses"), "`responses` must be a mapping of status codes to responses"
            )
        else:
            for status, response in raw_responses.items():
                spec = self.response(str(status), response, (*path, "responses", str(status)))
                if spec is not None:
                    responses[spec.status] = spec
        operation_id = node.get("operationId")
        return Operation(
            method=method.upper(),
            path=route,
            operation_id=str(operation_id) if operation_id is not None else None,
            body=body,
            body_required=body_required,
            body_media_type=media,
            parameters=tuple(merged.values()),
            responses=responses,
        )

    def parameters(self, node: Any, path: YamlPath) -> list[Parameter]:
        if node is None:
            return []
        if not isinstance(node, list):
            self.problem(path, "`parameters` must be a list")
            return []
        result = []
        for index, raw in enumerate(node):
            found = self.deref(raw, (*path, index))
            if found is None:
                continue
            item, where = found
            if not isinstance(item, dict):
                self.problem(where, "a parameter must be a mapping with `name` and `in`")
                continue
            name, location = item.get("name"), item.get("in")
            if not isinstance(name, str) or not name:
                self.problem((*where, "name"), "a parameter needs a `name`")
                continue
            if location not in ("path", "query", "header", "cookie"):
                self.problem(
                    (*where, "in"), f"`in` must be path, query, header or cookie, not {location!r}"
                )
                continue
            schema = (
                self.schema(item["schema"], (*where, "schema")) if "schema" in item else Schema()
            )
            required = bool(item.get("required", location == "path"))
            result.append(Parameter(name, location, required, schema))
        return result

    def request_body(self, node: Any, path: YamlPath) -> tuple[Schema | None, bool, str | None]:
        found = self.deref(node, path)
        if found is None:
            return None, False, None
        body, path = found
        if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
            self.problem(path, "a request body needs a `content` mapping of media types")
            return None, False, None
        content = self.content(body["content"], (*path, "content"))
        required = bool(body.get("required", False))
        for media, schema in content.items():
            if _is_json(media):
                return schema, required, media
        if content:
            media, schema = next(iter(content.items()))
            return schema, required, media
        return None, required, None

    def response(self, status: str, node: Any, path: YamlPath) -> ResponseSpec | None:
        if not (status == "default" or re.fullmatch(r"[1-5](\d\d|XX|xx)", status)):
            self.problem(path, f"{status!r} is not a status code, a range like 4XX, or `default`")
            return None
        found = self.deref(node, path)
        if found is None:
            return None
        response, path = found
        if not isinstance(response, dict):
            self.problem(path, "a response must be a mapping")
            return None
        content: dict[str, Schema | None] = {}
        if "content" in response:
            if isinstance(response["content"], dict):
                content = self.content(response["content"], (*path, "content"))
            else:
                self.problem((*path, "content"), "`content` must be a mapping of media types")
        headers = response.get("headers") or {}
        required_headers = tuple(
            str(name)
            for name, header in (headers.items() if isinstance(headers, dict) else ())
            if isinstance(header, dict) and header.get("required")
        )
        return ResponseSpec(
            status=status,
            description=str(response.get("description", "")),
            content=content,
            required_headers=required_headers,
        )

    def content(self, node: Mapping[str, object], path: YamlPath) -> dict[str, Schema | None]:
        result: dict[str, Schema | None] = {}
        for media, entry in node.items():
            where = (*path, str(media))
            if not isinstance(entry, dict):
                self.problem(where, "a media type entry must be a mapping (with `schema`)")
                continue
            result[str(media)] = (
                self.schema(entry["schema"], (*where, "schema")) if "schema" in entry else None
            )
        return result

    # -- schemas ----------------------------------------------------------

    def schema(self, node: Any, path: YamlPath, chain: tuple[str, ...] = ()) -> Schema:
        if isinstance(node, bool):
            return Schema() if node else Schema(enum=())
        if not isinstance(node, dict):
            self.problem(path, f"a schema must be a mapping, found {type(node).__name__}")
            return Schema()
        if "$ref" in node:
            return self.schema_ref(node["$ref"], (*path, "$ref"), chain)
        raw_type = node.get("type")
        nullable = bool(node.get("nullable", False))
        types: list[str] = []
        if isinstance(raw_type, list):
            types = [str(t) for t in raw_type]
            if "null" in types:
                nullable = True
                types.remove("null")
        elif raw_type is not None:
            types = [str(raw_type)]
        valid = {t.value for t in SchemaType}
        for name in types:
            if name not in valid:
                hint = did_you_mean(name, sorted(valid))
                self.problem((*path, "type"), f"unknown type {name!r}{hint or '.'}")
        types = [t for t in types if t in valid]
        if len(types) > 1:
            alternatives = tuple(self.typed(node, path, SchemaType(t), False) for t in types)
            return Schema(nullable=nullable, any_of=alternatives)
        if types:
            kind: SchemaType | None = SchemaType(types[0])
        elif "properties" in node or "additionalProperties" in node:
            kind = SchemaType.OBJECT
        elif "items" in node:
            kind = SchemaType.ARRAY
        else:
            kind = None
        return self.typed(node, path, kind, nullable)

    def schema_ref(self, ref: Any, where: YamlPath, chain: tuple[str, ...]) -> Schema:
        if isinstance(ref, str) and ref in chain:
            self.problem(
                where, f"circular $ref with no schema in between: {' → '.join([*chain, ref])}"
            )
            return Schema()
        if isinstance(ref, str) and ref in self.schemas:
            return self.schemas[ref]
        found = self.lookup(ref, where)
        if found is None:
            return Schema()
        target, target_path = found
        placeholder = Schema(ref=ref)
        self.schemas[ref] = placeholder
        self.building.add(ref)
        built = self.schema(target, target_path, (*chain, ref))
        if built.ref in self.building:
            # An alias of a schema still being built: its fields are not known yet.
            built = Schema(all_of=(built,))
        placeholder._fill(built)
        self.building.discard(ref)
        return placeholder

    def typed(
        self, node: Mapping[str, object], path: YamlPath, kind: SchemaType | None, nullable: bool
    ) -> Schema:
        minimum, exclusive_min = self.bound(node, path, "minimum", "exclusiveMinimum")
        maximum, exclusive_max = self.bound(node, path, "maximum", "exclusiveMaximum")
        enum: tuple[Any, ...] | None = None
        if "enum" in node:
            if isinstance(node["enum"], list):
                enum = tuple(node["enum"])
            else:
                self.problem((*path, "enum"), "`enum` must be a list of values")
        if "const" in node:
            enum = (node["const"],)
        pattern = node.get("pattern")
        if pattern is not None:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                self.problem((*path, "pattern"), f"invalid regular expression: {exc}")
                pattern = None
        properties: dict[str, Schema] = {}
        raw_properties = node.get("properties", {})
        if isinstance(raw_properties, dict):
            for name, child in raw_properties.items():
                properties[str(name)] = self.schema(child, (*path, "properties", str(name)))
        else:
            self.problem(
                (*path, "properties"), "`properties` must be a mapping of names to schemas"
            )
        required = node.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            self.problem((*path, "required"), "`required` must be a list of property names")
            required = []
        additional: bool | Schema = True
        if "additionalProperties" in node:
            raw = node["additionalProperties"]
            additional = (
                raw if isinstance(raw, bool) else self.schema(raw, (*path, "additionalProperties"))
            )
        items = self.schema(node["items"], (*path, "items")) if "items" in node else None
        self.ordered(node, path, ("minimum", "maximum"), ("minLength", "maxLength"))
        self.ordered(node, path, ("minItems", "maxItems"), ("minProperties", "maxProperties"))
        return Schema(
            type=kind,
            format=str(node["format"]) if "format" in node else None,
            minimum=minimum,
            maximum=maximum,
            exclusive_minimum=exclusive_min,
            exclusive_maximum=exclusive_max,
            min_length=self.count(node, path, "minLength"),
            max_length=self.count(node, path, "maxLength"),
            pattern=str(pattern) if pattern is not None else None,
            enum=enum,
            nullable=nullable,
            properties=properties,
            required=frozenset(required),
            additional_properties=additional,
            items=items,
            min_items=self.count(node, path, "minItems"),
            max_items=self.count(node, path, "maxItems"),
            any_of=self.alternatives(node, path, "anyOf"),
            one_of=self.alternatives(node, path, "oneOf"),
            all_of=self.alternatives(node, path, "allOf"),
        )

    def bound(
        self, node: Mapping[str, object], path: YamlPath, key: str, exclusive_key: str
    ) -> tuple[float | None, bool]:
        raw = node.get(key)
        value: float | None = None
        if _finite(raw):
            value = raw
        elif raw is not None:
            self.problem((*path, key), f"`{key}` must be a finite number, found {raw!r}")
        exclusive = node.get(exclusive_key, False)
        if isinstance(exclusive, bool):
            return value, exclusive and value is not None
        if _finite(exclusive):
            return exclusive, True
        self.problem(
            (*path, exclusive_key),
            f"`{exclusive_key}` must be a boolean (3.0) or a finite number (3.1)",
        )
        return value, False

    def ordered(self, node: Mapping[str, object], path: YamlPath, *pairs: tuple[str, str]) -> None:
        """A lower bound above its upper bound accepts no value: nothing could be generated."""
        for low_key, high_key in pairs:
            low: Any = node.get(low_key)
            high: Any = node.get(high_key)
            if _finite(low) and _finite(high) and low > high:
                self.problem(
                    (*path, low_key), f"`{low_key}` ({low}) is above `{high_key}` ({high})"
                )

    def count(self, node: Mapping[str, object], path: YamlPath, key: str) -> int | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem((*path, key), f"`{key}` must be a non-negative integer, found {value!r}")
            return None
        return value

    def alternatives(
        self, node: Mapping[str, object], path: YamlPath, key: str
    ) -> tuple[Schema, ...]:
        raw = node.get(key)
        if raw is None:
            return ()
        if not isinstance(raw, list) or not raw:
            self.problem((*path, key), f"`{key}` must be a non-empty list of schemas")
            return ()
        return tuple(self.schema(child, (*path, key, index)) for index, child in enumerate(raw))


def _finite(value: object) -> TypeGuard[int | float]:
    """A JSON number a float can hold: not a boolean, NaN, an infinity or a 400-digit integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_json(media: str) -> bool:
    base = media.split(";")[0].strip().lower()
    return base == "application/json" or base.endswith("+json")
