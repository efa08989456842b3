"""Pydantic validation errors as heisen `Problem`s located in the YAML file.

Each pydantic error carries a `loc` (the path into the document); the YAML
loader remembers the line and column of every path, so the translation is a
lookup plus a clearer message: unknown keys get a "did you mean" hint drawn
from the keys the schema accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from heisen._yaml import YamlDocument
from heisen.errors import Problem, did_you_mean

_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def known_keys(models: Iterable[type[BaseModel]]) -> set[str]:
    """Every key (alias first) that the given models accept."""
    keys: set[str] = set()
    for model in models:
        for name, field in model.model_fields.items():
            keys.add(field.alias or name)
    return keys


def translate(
    error: ValidationError,
    document: YamlDocument,
    vocabulary: set[str],
    *,
    prefix: tuple[str | int, ...] = (),
) -> list[Problem]:
    """One `Problem` per pydantic error, with the YAML path and line of the value."""
    problems: list[Problem] = []
    for item in error.errors():
        path = (*prefix, *(part for part in item["loc"] if not _is_union_tag(part)))
        problems.append(document.problem(path, _message(item, vocabulary)))
    return problems


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the member type name ("function-after[...]") into `loc` for unions.
    return isinstance(part, str) and ("[" in part and part.endswith("]"))


def _message(item: Any, vocabulary: set[str]) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        key = str(item["loc"][-1]) if item["loc"] else "?"
        return f"unknown key {key!r}{did_you_mean(key, sorted(vocabulary))}"
    if kind == "missing":
        return "this key is required"
    message = str(item["msg"])
    for text in _VALUE_ERROR_PREFIXES:
        if message.startswith(text):
            message = message[len(text) :]
    if kind.endswith("_type") or kind.endswith("_parsing"):
        shown = repr(item.get("input"))
        message = f"{message} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return message
