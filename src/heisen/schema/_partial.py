"""What of a document still validates once the parts the schema refused are mended or cut.

A pipeline with an unknown key may also name a missing file: the user should
hear of both at once. The checks beyond the schema need a validated model, so
they run on a copy of the document in which a missing required value is filled
with a placeholder and any other refused part is removed. Only mapping keys
are removed, never list items, so that a YAML path in the copy names the same
node as in the file. Problems the later checks find in what was mended or cut,
or that name what was cut, are consequences, not news: `Mending.hides` says so.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from heisen._serialised import JsonObject
from heisen._yaml import format_path
from heisen.errors import Problem
from heisen.schema._errors import is_union_tag

Model = TypeVar("Model")
_MAX_ROUNDS = 10
_PLACEHOLDER = ""


@dataclass
class Mending:
    """What was filled in or cut from the copy before it validated."""

    removed_names: set[str] = field(default_factory=set)
    removed_kinds: set[str] = field(default_factory=set)
    touched_paths: set[str] = field(default_factory=set)

    def hides(self, problem: Problem) -> bool:
        """Whether `problem` is a consequence of the mending rather than a problem of its own."""
        if any(f"'{name}'" in problem.message for name in self.removed_names):
            return True
        if any(kind in problem.message for kind in self.removed_kinds):
            return True
        return any(
            problem.path == path or problem.path.startswith((f"{path}.", f"{path}["))
            for path in self.touched_paths
        )


def validate_partially(
    data: JsonObject,
    validate: Callable[[JsonObject], Model],
    named: Mapping[tuple[str, ...], str],
) -> tuple[Model, Mending] | None:
    """The model from `data` with its refused parts mended or cut, or None if none validates.

    `named` maps where named entries live to what they are called, such as
    `("services",): "service"`: once one is cut, problems that speak of that
    kind of thing may be about the missing entry, and are hidden.
    """
    mended = copy.deepcopy(data)
    mending = Mending()
    filled: set[tuple[Any, ...]] = set()
    for _ in range(_MAX_ROUNDS):
        try:
            return validate(mended), mending
        except ValidationError as exc:
            progress = False
            for item in exc.errors():
                loc = tuple(part for part in item["loc"] if not is_union_tag(part))
                if item["type"] == "missing" and loc not in filled and _fill(mended, loc):
                    filled.add(loc)
                    mending.touched_paths.add(format_path(loc))
                    progress = True
                    continue
                if loc in filled or item["type"] == "missing":
                    loc = loc[:-1]  # the placeholder did not do: the object lacking it goes
                progress |= _remove_nearest_key(mended, loc, mending, named)
            if not progress:
                return None
    return None


def _node_at(data: Any, loc: tuple[Any, ...]) -> list[Any] | None:
    """The nodes from the root down along `loc`, or None when part of the way is gone."""
    nodes = [data]
    for part in loc:
        node = nodes[-1]
        if isinstance(node, dict) and part in node:
            nodes.append(node[part])
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            nodes.append(node[part])
        else:
            return None
    return nodes


def _fill(data: Any, loc: tuple[Any, ...]) -> bool:
    nodes = _node_at(data, loc[:-1])
    if not loc or nodes is None or not isinstance(nodes[-1], dict):
        return False
    nodes[-1][loc[-1]] = _PLACEHOLDER
    return True


def _remove_nearest_key(
    data: Any, loc: tuple[Any, ...], mending: Mending, named: Mapping[tuple[str, ...], str]
) -> bool:
    """Delete the deepest mapping key along `loc`; record what went and the names in it."""
    nodes = _node_at(data, loc)
    if nodes is None:
        return False  # gone already, with an ancestor removed for another error
    for depth in range(len(nodes) - 1, 0, -1):
        parent, key = nodes[depth - 1], loc[depth - 1]
        if isinstance(parent, dict):
            mending.removed_names.update(_names_in(key, parent.pop(key)))
            mending.touched_paths.add(format_path(loc[:depth]))
            if loc[: depth - 1] in named:
                mending.removed_kinds.add(named[loc[: depth - 1]])
            return True
    return False


def _names_in(key: Any, value: Any) -> set[str]:
    """What other parts may refer to in a removed part: its key, its own keys, `name:` values."""
    names = {str(key)}
    if isinstance(value, dict):
        names.update(str(inner) for inner in value)
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("name"), str):
                names.add(node["name"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names
