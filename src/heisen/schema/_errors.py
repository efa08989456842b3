"""Pydantic's validation errors, said in the user's terms: YAML path, line, "did you mean"."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from heisen._yaml import YamlDocument, clipped
from heisen.errors import Problem


def problems_from_validation(
    error: ValidationError, document: YamlDocument, root: type[BaseModel]
) -> list[Problem]:
    problems: list[Problem] = []
    unions: dict[tuple[Any, ...], int] = {}  # where one union's failed branches were reported
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if not is_union_tag(part))
        in_union = len(loc) != len(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            known = _field_names_at(root, loc[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            message = f"unknown key {loc[-1]!r}"
            if hint:
                message += f"; did you mean {hint[0]!r}?"
            elif known:
                message += f" (allowed here: {', '.join(sorted(known))})"
        elif kind == "too_short" and isinstance(item.get("input"), dict | list):
            message = "name at least one" + (" service" if loc == ("services",) else "")
        elif kind == "missing":
            message = f"{loc[-1]!r} is required here"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if (
                "input" in item
                and kind not in ("value_error",)
                and not isinstance(item["input"], dict | list)
            ):
                message += f" (got {clipped(item['input'])})"
        if in_union and loc in unions:  # `workers: -3`: neither an int >= 1 nor "auto"
            first = problems[unions[loc]]
            got = message[message.rfind(" (got ") :] if " (got " in message else ""
            head = first.message.removesuffix(got) if got else first.message
            problems[unions[loc]] = Problem(
                first.path, f"{head}; or {message}", first.line, first.column
            )
            continue
        if in_union:
            unions[loc] = len(problems)
        problems.append(document.problem(loc, message))
    return problems


def is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        part.startswith(("function-", "list[", "dict[", "constrained-", "literal["))
        or part in ("int", "str", "float", "bool")
    )


def _field_names_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if typing.get_origin(current) in (list, dict):
            args = typing.get_args(current)
            current = args[-1] if args else None
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = _find_field(current, str(part))
            if field is None:
                return []
            current = field.annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _find_field(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if name in (field_name, field.alias):
            return field
    return None


def _unwrap(annotation: Any) -> Any:
    """Optional[X] → X; Annotated[X, ...] → X; list[X] stays (indexed by position)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        elif origin is list:
            return annotation
        else:
            return annotation
