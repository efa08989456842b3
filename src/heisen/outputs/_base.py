"""What every phase's outputs model shares: the manifest round trip and the findings list.

A model is built by its phase and serialised at the boundary with
`to_manifest()`, which gives exactly the keys the phase set (and no others):
a key the phase did not write (`bound:` without `confidence:`) stays out of
the manifest, while one it wrote as null (`corpus: null`) stays in. Parsing
an existing manifest with `from_manifest()` keeps the same distinction, so
`from_manifest(data).to_manifest() == data` for everything heisen wrote.
Every key is optional when parsing: a phase that errored early wrote few.

Numbers are `int | float` where a phase may write either, so a value read
back keeps the type it was written with (`3` stays `3`, `3.0` stays `3.0`).
Keys a model does not know are kept as they are (`unknown_keys()` lists
them): a manifest written by another heisen version still parses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from heisen.manifest import plain

Number = int | float
"""A figure a phase may write as an int or a float; it is read back as it was written."""

JsonObject = dict[str, JsonValue]
"""Values whose shape the user decides (an invariant's evidence, a toxic's attributes)."""


class OutputModel(BaseModel):
    """A mapping of the manifest, typed; see the module docstring."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_manifest(self, *, exclude: set[str] | None = None) -> JsonObject:
        """The mapping the manifest holds: the keys that were set, by their manifest names
        (but those of `exclude`)."""
        data: JsonObject = self.model_dump(
            mode="json", by_alias=True, exclude_unset=True, exclude=exclude
        )
        return data

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any] | None) -> Self:
        """Parse what a manifest holds (None or {} for a phase that wrote nothing).

        Values are first made what the manifest would write (`heisen.manifest.plain`: a
        Decimal or a date from a probe becomes its text, a key its string), so a mapping
        built in memory parses exactly as its written form would."""
        return cls.model_validate(plain(dict(data or {})))

    def unknown_keys(self, where: str = "outputs") -> list[str]:
        """Dotted paths of keys no model declares (empty for what this heisen writes)."""
        return list(_unknown(self, where))


def _unknown(value: object, where: str) -> Iterator[str]:
    if isinstance(value, OutputModel):
        for key in value.model_extra or {}:
            yield f"{where}.{key}"
        for name in value.model_fields_set:
            field = type(value).model_fields.get(name)
            if field is not None:
                yield from _unknown(
                    getattr(value, name), f"{where}.{field.serialization_alias or name}"
                )
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _unknown(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unknown(item, f"{where}.{key}")


class FindingRecord(OutputModel):
    """One item of a phase's `findings:` (the runner writes them from `heisen.phase.Finding`)."""

    phase: str = ""
    name: str = ""
    message: str = ""
    replay: str | None = None
    evidence: JsonObject = Field(default_factory=dict)
