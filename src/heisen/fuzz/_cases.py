"""Turn a schema (or an OpenAPI operation) into a deterministic list of fuzz cases.

The list opens with realistic cases and the catalogue: one valid baseline,
then, for every field of the baseline, each of its edge cases applied alone
(so a failure's label says which edge did it). Kinds take turns (boundary,
float, null, missing, …), so even a short run touches every kind. Past the
catalogue the list is filled with fresh realistic cases and combinations of
several edges at once. The same seed gives the same list, byte for byte.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from heisen._yaml import format_path
from heisen.fuzz._openapi import Operation, Parameter
from heisen.fuzz._schema import Schema, SchemaType
from heisen.fuzz._values import (
    DEFAULT_MAX_STRING_BYTES,
    DEFAULT_NESTING_DEPTH,
    Edge,
    EdgeKind,
    ValueFactory,
    encode_payload,
    encode_text,
    merged,
    nested_objects,
)

MAX_URL_VALUE_BYTES = 8192
_WALK_DEPTH = 6
_EXTRA_FIELDS: tuple[tuple[str, Any], ...] = (
    ("is_admin", True),
    ("__proto__", {"polluted": True}),
)
_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FuzzCase:
    """One request to send: its body (`payload`), path parameters and query."""

    id: str
    payload: Any
    label: str
    kind: EdgeKind
    path_params: Mapping[str, Any] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    field_path: tuple[str | int, ...] | None = None
    """The one body field this case changed from the baseline (None: several, or unknown)."""

    @property
    def body(self) -> bytes:
        return encode_payload(self.payload)


class _Parts(NamedTuple):
    """A request's body, path parameters and query, before it becomes a case."""

    body: Any
    path: Mapping[str, Any]
    query: Mapping[str, Any]

    def case(self, label: str, kind: EdgeKind) -> FuzzCase:
        return make_case(self.body, label, kind, self.path, self.query)


def make_case(
    payload: Any,
    label: str,
    kind: EdgeKind,
    path_params: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    field_path: tuple[str | int, ...] | None = None,
) -> FuzzCase:
    path_params = dict(path_params or {})
    query = dict(query or {})
    return FuzzCase(
        case_id(payload, path_params, query), payload, label, kind, path_params, query, field_path
    )


def case_id(
    payload: Any,
    path_params: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> str:
    """A stable short hash of what goes on the wire (body, path parameters, query)."""
    digest = hashlib.sha256(encode_payload(payload))
    if path_params or query:
        digest.update(b"\n" + encode_text(sorted((path_params or {}).items())).encode("utf-8"))
        digest.update(b"\n" + encode_text(sorted((query or {}).items())).encode("utf-8"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class _Mutation:
    kind: EdgeKind
    label: str
    area: str  # body, path or query
    path: _Path
    value: Any = None
    remove: bool = False


def generate_cases(
    schema: Schema | Operation | None,
    *,
    seed: int,
    count: int,
    max_string_bytes: int = DEFAULT_MAX_STRING_BYTES,
    nesting_depth: int = DEFAULT_NESTING_DEPTH,
    path_params: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> list[FuzzCase]:
    """`count` cases for a request body schema or a whole operation; deterministic for `seed`.

    `path_params` and `query` fix the values of those parameters in every case
    that does not fuzz them (a checkout must name an event that exists).
    """
    if count <= 0:
        return []
    factory = ValueFactory(seed, max_string_bytes=max_string_bytes, nesting_depth=nesting_depth)
    if isinstance(schema, Operation):
        body_schema, path_specs, query_specs = schema.body, schema.path_params, schema.query_params
    else:
        body_schema, path_specs, query_specs = schema, (), ()

    def fresh() -> _Parts:
        body = factory.valid(body_schema) if body_schema is not None else None
        path = {p.name: factory.valid(p.schema, p.name) for p in path_specs}
        params = {p.name: factory.valid(p.schema, p.name) for p in query_specs}
        return _Parts(body, {**path, **(path_params or {})}, {**params, **(query or {})})

    base = fresh()
    groups: dict[EdgeKind, list[_Mutation]] = {}
    catalogue: list[_Mutation] = []
    if body_schema is not None:
        catalogue += _body_mutations(factory, body_schema, base.body)
    catalogue += _parameter_mutations(factory, path_specs, "path")
    catalogue += _parameter_mutations(factory, query_specs, "query")
    for mutation in catalogue:
        groups.setdefault(mutation.kind, []).append(mutation)

    cases: list[FuzzCase] = []
    seen: set[str] = set()

    def add(case: FuzzCase) -> None:
        if case.id not in seen and len(cases) < count:
            seen.add(case.id)
            cases.append(case)

    add(base.case("valid baseline", EdgeKind.VALID))
    realistic = []
    for _ in range(count // 10):
        body, path, params = fresh()
        realistic.append(make_case(body, "valid (fresh values)", EdgeKind.VALID, path, params))
    queues = [realistic] + [[_apply_case(base, m) for m in group] for group in groups.values()]
    while any(queues) and len(cases) < count:
        for queue in queues:
            if queue:
                add(queue.pop(0))
    rng = random.Random(f"{seed}:combined")
    attempts = 0
    while len(cases) < count and attempts < 4 * count:
        attempts += 1
        combined = fresh()
        if attempts % 4 == 1 or not catalogue:
            add(combined.case("valid (fresh values)", EdgeKind.VALID))
            continue
        chosen = rng.sample(catalogue, k=min(len(catalogue), rng.randint(2, 3)))
        for mutation in chosen:
            combined = _apply(combined, mutation)
        label = " + ".join(m.label for m in chosen)
        add(combined.case(label, EdgeKind.COMBINED))
    return cases


def _body_mutations(factory: ValueFactory, schema: Schema, baseline: Any) -> list[_Mutation]:
    found: list[_Mutation] = []
    stack: list[tuple[Schema, Any, _Path, str]] = [(schema, baseline, (), "")]
    while stack:
        node, value, path, name = stack.pop(0)
        node = merged(node)
        where = format_path(path) or "body"
        for edge in factory.edges(node, name):
            found.append(_Mutation(edge.kind, f"{where}: {edge.label}", "body", path, edge.value))
        if isinstance(value, dict):
            found.append(
                _Mutation(
                    EdgeKind.NESTING,
                    f"{where}: objects nested {factory.nesting_depth} deep",
                    "body",
                    path,
                    nested_objects(factory.nesting_depth),
                )
            )
            for key in value:
                state = "required" if key in node.required else "optional"
                found.append(
                    _Mutation(
                        EdgeKind.MISSING,
                        f"{format_path((*path, key))}: missing ({state})",
                        "body",
                        (*path, key),
                        remove=True,
                    )
                )
            for key, extra in _EXTRA_FIELDS:
                if key not in node.properties:
                    found.append(
                        _Mutation(
                            EdgeKind.EXTRA,
                            f"{where}: extra field {key!r}",
                            "body",
                            (*path, key),
                            extra,
                        )
                    )
            if len(path) < _WALK_DEPTH:
                for key, child_value in value.items():
                    child = node.properties.get(key)
                    if child is None and isinstance(node.additional_properties, Schema):
                        child = node.additional_properties
                    stack.append((child or Schema(), child_value, (*path, key), key))
        elif isinstance(value, list) and value and len(path) < _WALK_DEPTH:
            stack.append((node.items or Schema(), value[0], (*path, 0), name))
    return found


def _parameter_mutations(
    factory: ValueFactory, specs: tuple[Parameter, ...], area: str
) -> list[_Mutation]:
    """Edges for path or query parameters: only scalars fit in a URL, and not megabytes of them."""
    found: list[_Mutation] = []
    for spec in specs:
        schema = spec.schema
        if schema.type in (SchemaType.ARRAY, SchemaType.OBJECT):
            schema = Schema(type=SchemaType.STRING)
        for edge in factory.edges(schema, spec.name):
            if _fits_url(edge):
                found.append(
                    _Mutation(
                        edge.kind,
                        f"{area}.{spec.name}: {edge.label}",
                        area,
                        (spec.name,),
                        edge.value,
                    )
                )
        if area == "query":
            state = "required" if spec.required else "optional"
            found.append(
                _Mutation(
                    EdgeKind.MISSING,
                    f"query.{spec.name}: missing ({state})",
                    area,
                    (spec.name,),
                    remove=True,
                )
            )
    return found


def _fits_url(edge: Edge) -> bool:
    value = edge.value
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) <= MAX_URL_VALUE_BYTES
    return value is None or isinstance(value, int | float)


def _apply_case(base: _Parts, mutation: _Mutation) -> FuzzCase:
    body, path, query = _apply(base, mutation)
    field_path = mutation.path if mutation.area == "body" else None
    return make_case(body, mutation.label, mutation.kind, path, query, field_path)


def _apply(state: _Parts, mutation: _Mutation) -> _Parts:
    body, path, query = state
    if mutation.area == "body":
        body = replace_at(body, mutation.path, mutation.value, remove=mutation.remove)
    elif mutation.area == "path":
        path = replace_at(path, mutation.path, mutation.value, remove=mutation.remove)
    else:
        query = replace_at(query, mutation.path, mutation.value, remove=mutation.remove)
    return _Parts(body, path, query)


def replace_at(value: Any, path: _Path, new: Any, *, remove: bool = False) -> Any:
    """A copy of `value` with the node at `path` replaced (or removed); copies only along the path.

    A path that no longer exists (its parent was removed or changed type) leaves `value` as it is.
    """
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and isinstance(head, str):
        if not rest:
            copy = dict(value)
            if remove:
                copy.pop(head, None)
            else:
                copy[head] = new
            return copy
        if head not in value:
            return value
        copy = dict(value)
        copy[head] = replace_at(value[head], rest, new, remove=remove)
        return copy
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        copy_list = list(value)
        if not rest:
            if remove:
                del copy_list[head]
            else:
                copy_list[head] = new
            return copy_list
        copy_list[head] = replace_at(value[head], rest, new, remove=remove)
        return copy_list
    return value
