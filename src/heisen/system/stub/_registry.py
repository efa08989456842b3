"""The live set of stub mappings, indexed so matching stays cheap.

Order of precedence, as in WireMock: the lowest `priority` wins; among equal
priorities the most recently added mapping wins. Mappings that pin one
path (`url`, `urlPath`, a template without variables) are indexed by
(method, path); a request looks at most at three sorted lists, the exact
(method, path) one, the (ANY, path) one and the list of pattern mappings, and
takes the first match of each. The index is rebuilt on every admin change,
which is rare next to requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from heisen.system.stub._http import HttpRequest
from heisen.system.stub._mappings import Mapping
from heisen.system.stub._matching import Check
from heisen.system.stub._scenarios import STARTED, Scenarios

Key = tuple[str | None, str]


@dataclass(frozen=True, slots=True)
class NearMiss:
    mapping: Mapping
    checks: list[Check]


class Registry:
    def __init__(self, scenarios: Scenarios) -> None:
        self.scenarios = scenarios
        self._mappings: dict[str, tuple[int, Mapping]] = {}
        self._next = 0
        self._exact: dict[Key, list[Mapping]] = {}
        self._generic: list[Mapping] = []
        self._rank: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._mappings)

    def all(self) -> list[Mapping]:
        """Newest first, as WireMock lists them."""
        return [m for _, m in sorted(self._mappings.values(), key=lambda pair: -pair[0])]

    def get(self, stub_id: str) -> Mapping | None:
        found = self._mappings.get(stub_id)
        return found[1] if found else None

    def add(self, mapping: Mapping) -> None:
        self._next += 1
        self._mappings[mapping.id] = (self._next, mapping)
        self._declare(mapping)
        self._reindex()

    def replace(self, mapping: Mapping) -> bool:
        """Swap a mapping in place, keeping its insertion rank; False if the id is unknown."""
        found = self._mappings.get(mapping.id)
        if found is None:
            return False
        self._mappings[mapping.id] = (found[0], mapping)
        self._declare(mapping)
        self._reindex()
        return True

    def remove(self, stub_id: str) -> bool:
        if self._mappings.pop(stub_id, None) is None:
            return False
        self._reindex()
        return True

    def clear(self) -> None:
        self._mappings.clear()
        self._reindex()

    def _declare(self, mapping: Mapping) -> None:
        if mapping.scenario:
            self.scenarios.declare(mapping.scenario, mapping.required_state, mapping.new_state)

    def _reindex(self) -> None:
        ordered = [
            m for _, m in sorted(self._mappings.values(), key=lambda p: (p[1].priority, -p[0]))
        ]
        self._rank = {m.id: i for i, m in enumerate(ordered)}
        exact: dict[Key, list[Mapping]] = {}
        generic: list[Mapping] = []
        for mapping in ordered:
            path = mapping.request.exact_path
            if path is None:
                generic.append(mapping)
            else:
                exact.setdefault((mapping.request.method, path), []).append(mapping)
        self._exact = exact
        self._generic = generic

    def find(self, request: HttpRequest) -> Mapping | None:
        """The winning mapping for `request` in the current scenario states, or None."""
        best: Mapping | None = None
        best_rank = len(self._rank)
        rank = self._rank
        for candidates in (
            self._exact.get((request.method, request.path)),
            self._exact.get((None, request.path)),
            self._generic,
        ):
            if not candidates:
                continue
            for mapping in candidates:
                if rank[mapping.id] >= best_rank:
                    break
                if self._eligible(mapping, request):
                    best, best_rank = mapping, rank[mapping.id]
                    break
        return best

    def _eligible(self, mapping: Mapping, request: HttpRequest) -> bool:
        if mapping.required_state is not None and mapping.scenario is not None:
            if self.scenarios.state(mapping.scenario) != mapping.required_state:
                return False
        return mapping.request.matches(request)

    def nearest(self, request: HttpRequest) -> NearMiss | None:
        """The mapping that passes the largest share of its checks (method and URL weigh double)."""
        best: NearMiss | None = None
        best_score = -1.0
        for _, mapping in sorted(self._mappings.values(), key=lambda p: -p[0]):
            checks = mapping.request.explain(request)
            if mapping.scenario and mapping.required_state:
                state = self.scenarios.state(mapping.scenario) if mapping.scenario else STARTED
                checks.append(
                    Check(
                        f"scenario {mapping.scenario}",
                        f"state {mapping.required_state}",
                        state == mapping.required_state,
                    )
                )
            weights = [
                2.0 if c.label in ("method",) or c.label.startswith("url") else 1.0 for c in checks
            ]
            score = sum(w for w, c in zip(weights, checks, strict=True) if c.ok) / sum(weights)
            if score > best_score:
                best, best_score = NearMiss(mapping, checks), score
        return best
