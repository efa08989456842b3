"""The whole pipeline a user writes, and a validated pipeline with where it came from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from heisen._serialised import JsonObject
from heisen.schema import limits as _limits
from heisen.schema._phases import Phases
from heisen.schema._system import (
    Dependency,
    HttpCall,
    Invariant,
    RequestTemplate,
    Scenario,
    Service,
)
from heisen.schema._types import Strict


class Pipeline(Strict):
    api_version: Literal["heisen/v1"] = Field(default="heisen/v1", alias="apiVersion")
    kind: Literal["Pipeline"] = "Pipeline"
    name: str
    description: str | None = None
    seed: int | None = _limits.SEED.field(None)
    allow_hosts: list[str] = Field(default_factory=list)
    dependencies: dict[str, Dependency] = Field(default_factory=dict)
    services: dict[str, Service] = Field(min_length=1)
    scenario: Scenario
    invariants: list[Invariant] = Field(default_factory=list)
    target: str | None = Field(
        default=None,
        description="the invariant whose race the reproduction ladder follows "
        "(default: the one tied to predict's top hotspot, else the first invariant)",
    )
    phases: Phases = Field(default_factory=Phases)

    def ladder_target(self, hotspots: Sequence[Mapping[str, Any]] = ()) -> str | None:
        """The invariant the ladder follows: `target:`, else the one tied to predict's top
        hotspot, else the first invariant (None: none).

        An invariant is tied to a hotspot when it counts the scenario request the hotspot's
        endpoint maps to: `load.<request>.` in its `expect:` or `severity:`, or that request
        as its `acknowledged.request`."""
        if self.target is not None:
            return self.target
        request = self.request_at(hotspots[0].get("endpoint")) if hotspots else None
        tied = self.invariant_counting(request) if request is not None else None
        if tied is not None:
            return tied
        return self.invariants[0].name if self.invariants else None

    def invariant_counting(self, request: str) -> str | None:
        """The first invariant that counts scenario request `request` (see `ladder_target`)."""
        counting = re.compile(rf"(?<![\w.])load\.{re.escape(request)}\.")
        for invariant in self.invariants:
            said = f"{invariant.expect or ''} {invariant.severity or ''}"
            acknowledged = invariant.acknowledged and invariant.acknowledged.request
            if counting.search(said) or acknowledged == request:
                return invariant.name
        return None

    def request_at(self, endpoint: object) -> str | None:
        """The scenario request that an endpoint (`{method, path}` or 'POST /events/{id}')
        names: same method, and its path matches with any one segment where `{id}` stands."""
        if isinstance(endpoint, Mapping):
            method, path = str(endpoint.get("method") or "GET"), str(endpoint.get("path") or "")
        elif isinstance(endpoint, str):
            method, _, path = endpoint.strip().partition(" ")
        else:
            return None
        regex = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path.strip().split("?")[0]))
        pattern = re.compile(f"^{regex}$")
        for name, request in self.scenario.requests.items():
            template_path = re.sub(r"\{\{[^}]*\}\}", "x", request.path.split("?")[0])
            if request.method.upper() == method.upper() and pattern.match(template_path):
                return name
        return None

    def target_service(self, request: RequestTemplate | HttpCall) -> str:
        return request.service or next(iter(self.services))


@dataclass(frozen=True)
class LoadedPipeline:
    """A validated pipeline and where it came from (`heisen.pipeline.load_pipeline` makes one)."""

    pipeline: Pipeline
    path: Path
    sha256: str
    raw: JsonObject  # the YAML as read: the manifest's `pipeline:` (serialisation boundary)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()
