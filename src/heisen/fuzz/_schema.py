"""The one schema type the fuzzer works on, and the pipeline's way to declare it.

Two sources describe a request: fields declared in `pipeline.yaml`
(`FieldSpec`, validated strictly like the rest of the pipeline) and an
OpenAPI 3.0/3.1 document (`_openapi.py`). Both become a `Schema`, the small
JSON-Schema subset that value generation (`_cases.py`), shrinking
(`_shrink.py`) and response checks (`_conformance.py`) understand.

A `Schema` may be recursive (an OpenAPI `Node` whose `children` are `Node`s):
the builder links a node to itself, so the graph can have cycles. That is why
`Schema` compares by identity, and why every walker over a schema is driven
by a finite value or carries a depth limit.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SchemaType(enum.StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"


@dataclass(frozen=True, eq=False)
class Schema:
    """One node of a request or response schema; `type=None` accepts any JSON value."""

    type: SchemaType | None = None
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None
    nullable: bool = False
    properties: Mapping[str, Schema] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    additional_properties: bool | Schema = True
    items: Schema | None = None
    min_items: int | None = None
    max_items: int | None = None
    any_of: tuple[Schema, ...] = ()
    one_of: tuple[Schema, ...] = ()
    all_of: tuple[Schema, ...] = ()
    ref: str | None = None
    """The `$ref` this node was reached through, for messages (`#/components/schemas/Order`)."""

    def _fill(self, other: Schema) -> None:
        """Copy `other` into this placeholder node: only the OpenAPI builder calls it, once,
        to close a recursive `$ref` cycle before anyone else can see the node."""
        for name in self.__dataclass_fields__:
            if name != "ref":
                object.__setattr__(self, name, getattr(other, name))

    def describe(self) -> str:
        """A short human name: `integer`, `string (email)`, `object`, `any`."""
        if self.type is None:
            return "any"
        return f"{self.type.value} ({self.format})" if self.format else self.type.value

    def bounds(self) -> tuple[float | None, float | None]:
        """The inclusive range of accepted numbers, as far as it is declared (integers:
        exclusive and fractional bounds are rounded to the nearest accepted integer)."""
        low, high = self.minimum, self.maximum
        if self.type is SchemaType.INTEGER:
            if low is not None:
                low = math.floor(low) + 1 if self.exclusive_minimum else math.ceil(low)
            if high is not None:
                high = math.ceil(high) - 1 if self.exclusive_maximum else math.floor(high)
        return low, high


class FieldSpec(BaseModel):
    """A field declared in the pipeline: `fields: {qty: {type: integer, minimum: 1}}`.

    Unlike OpenAPI, a declared field is `required` unless it says otherwise:
    the pipeline lists what the service expects to receive.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["integer", "number", "string", "boolean", "array", "object"]
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    enum: list[Any] | None = Field(default=None, min_length=1)
    nullable: bool = False
    required: bool = True
    items: FieldSpec | None = None
    properties: dict[str, FieldSpec] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum:g} is greater than maximum {self.maximum:g}")
        if (
            self.min_length is not None
            and self.max_length is not None
            and self.min_length > self.max_length
        ):
            raise ValueError(
                f"min_length {self.min_length} is greater than max_length {self.max_length}"
            )
        if self.items is not None and self.type != "array":
            raise ValueError(f"`items` only applies to type array, not {self.type}")
        if self.properties is not None and self.type != "object":
            raise ValueError(f"`properties` only applies to type object, not {self.type}")
        return self

    def to_schema(self) -> Schema:
        properties = {name: spec.to_schema() for name, spec in (self.properties or {}).items()}
        required = frozenset(
            name for name, spec in (self.properties or {}).items() if spec.required
        )
        return Schema(
            type=SchemaType(self.type),
            format=self.format,
            minimum=self.minimum,
            maximum=self.maximum,
            min_length=self.min_length,
            max_length=self.max_length,
            enum=tuple(self.enum) if self.enum is not None else None,
            nullable=self.nullable,
            properties=properties,
            required=required,
            items=self.items.to_schema() if self.items is not None else None,
        )


def schema_from_fields(fields: Mapping[str, FieldSpec]) -> Schema:
    """The object schema of a request body made of the declared `fields`."""
    return Schema(
        type=SchemaType.OBJECT,
        properties={name: spec.to_schema() for name, spec in fields.items()},
        required=frozenset(name for name, spec in fields.items() if spec.required),
    )
