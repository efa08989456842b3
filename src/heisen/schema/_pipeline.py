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
    """pipeline.yaml: the system under test, its scenario and invariants, and one section per
    phase."""

    api_version: Literal["heisen/v1"] = Field(
        default="heisen/v1",
        alias="apiVersion",
        description="the version of this file's format",
        examples=["heisen/v1"],
    )
    kind: Literal["Pipeline"] = Field(
        default="Pipeline", description="what this file is", examples=["Pipeline"]
    )
    name: str = Field(
        description="the pipeline's name, shown in reports and the manifest",
        examples=["ticketing"],
    )
    description: str | None = Field(
        default=None,
        description="free text for readers of the pipeline and its reports",
        examples=["Oversold concerts under concurrent checkout"],
    )
    seed: int | None = _limits.SEED.field(
        None,
        description="the run seed: every random choice derives from it, so a run is "
        "reproducible (--seed overrides it; default: a fresh one, printed at start)",
        examples=[1],
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts that are not loopback (127.0.0.0/8, ::1) and that services, "
        "dependencies and probes may still reach; any other such host is refused",
        examples=[["staging.internal"]],
    )
    dependencies: dict[str, Dependency] = Field(
        default_factory=dict,
        description="name -> a database, cache or HTTP API the services use; every link to it "
        "goes through a heisen proxy",
        examples=[{"postgres": {"kind": "postgres", "embedded": True}}],
    )
    services: dict[str, Service] = Field(
        min_length=1,
        description="name -> an HTTP service under test (the first one receives requests "
        "that name no service:)",
        examples=[{"app": {"command": ["{{ python }}", "app.py"], "replicas": 2}}],
    )
    scenario: Scenario = Field(
        description="the targeted scenario every phase from stress on re-runs",
        examples=[
            {
                "requests": {"buy": {"method": "POST", "path": "/checkout"}},
                "load": [{"burst": {"requests": 50}}],
            }
        ],
    )
    invariants: list[Invariant] = Field(
        default_factory=list,
        description="what must hold after every trial: each is one probe and, for sql:, "
        "redis:, http: and python:, an expect: over what the probe gives",
        examples=[
            [
                {
                    "name": "no-oversell",
                    "sql": "SELECT count(*) AS sold FROM tickets",
                    "expect": "sold <= 100",
                }
            ]
        ],
    )
    target: str | None = Field(
        default=None,
        description="the invariant whose race the reproduction ladder follows "
        "(default: the one tied to predict's top hotspot, else the first invariant)",
        examples=["no-oversell"],
    )
    phases: Phases = Field(
        default_factory=Phases,
        description="one section per phase to run, in run order whatever the order written; "
        "a phase without a section does not run",
        examples=[{"predict": {}, "stress": {"trials": 10}}],
    )

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
