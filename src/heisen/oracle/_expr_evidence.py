"""Small, plain copies of the values an expression read, for a finding's evidence.

A value is copied into YAML-friendly types (dict, list, str, int, float, bool,
None). Containers keep their first :data:`EVIDENCE_ITEMS` items and end with a
note of how many there were; strings keep :data:`EVIDENCE_CHARS` characters;
nesting below :data:`EVIDENCE_DEPTH` levels, or beyond :data:`EVIDENCE_NODES`
values in all, is replaced by a note. So evidence stays small whatever was read.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["EVIDENCE_CHARS", "EVIDENCE_DEPTH", "EVIDENCE_ITEMS", "EVIDENCE_NODES", "summarize"]

EVIDENCE_ITEMS = 20
EVIDENCE_CHARS = 200
EVIDENCE_DEPTH = 4
EVIDENCE_NODES = 200


def summarize(value: Any) -> Any:
    """A bounded, plain copy of ``value`` (see the module docstring)."""
    return _Summary().copy(value, 0)


def _text(text: str) -> str:
    if len(text) <= EVIDENCE_CHARS:
        return text
    return f"{text[:EVIDENCE_CHARS]}… ({len(text):,} characters)"


def _more(shown: int, total: int) -> str:
    return f"… {total - shown:,} more ({total:,} items in all)"


class _Summary:
    def __init__(self) -> None:
        self.left = EVIDENCE_NODES

    def copy(self, value: Any, depth: int) -> Any:
        self.left -= 1
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            return (
                value if value.bit_length() <= 256 else f"an integer of {value.bit_length()} bits"
            )
        if isinstance(value, str):
            return _text(value)
        if isinstance(value, bytes | bytearray):
            return _text(bytes(value).decode("utf-8", "backslashreplace"))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            if depth >= EVIDENCE_DEPTH or self.left <= 0:
                return f"… (a mapping of {len(value):,} items)"
            return self._mapping(value, depth)
        if isinstance(value, Collection):
            if depth >= EVIDENCE_DEPTH or self.left <= 0:
                return f"… ({len(value):,} items)"
            items = [self.copy(item, depth + 1) for item in itertools.islice(value, EVIDENCE_ITEMS)]
            if len(value) > EVIDENCE_ITEMS:
                items.append(_more(EVIDENCE_ITEMS, len(value)))
            return items
        return _text(repr(value))

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        copied: dict[Any, Any] = {}
        for key, item in itertools.islice(value.items(), EVIDENCE_ITEMS):
            plain = key if isinstance(key, str | int | float | bool) or key is None else repr(key)
            copied[_text(plain) if isinstance(plain, str) else plain] = self.copy(item, depth + 1)
        if len(value) > EVIDENCE_ITEMS:
            copied["…"] = _more(EVIDENCE_ITEMS, len(value))
        return copied
