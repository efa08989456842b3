"""Seeded mutations of a parsed document, for the tests that feed loaders malformed input."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any


def node_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node of `data`, the root's `()` first."""
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += node_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += node_paths(value, (*path, index))
    return found


def mutate(
    data: Any, rng: random.Random, odd_values: Sequence[Any], extra_keys: Sequence[Any]
) -> Any:
    """A copy of `data` with one to three nodes replaced by an odd value, removed, or given an
    extra key (one of `extra_keys`) holding an odd value."""
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(node_paths(data))
        if not path:
            return copy.deepcopy(rng.choice(odd_values))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        choice = rng.random()
        if choice < 0.6:
            parent[path[-1]] = copy.deepcopy(rng.choice(odd_values))
        elif choice < 0.8:
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(list(extra_keys))] = copy.deepcopy(rng.choice(odd_values))
    return data
