"""The whole pipeline a user writes, and a validated pipeline with where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
        "(default: the first invariant)",
    )
    phases: Phases = Field(default_factory=Phases)

    def ladder_target(self) -> str | None:
        """The invariant the ladder follows: `target:`, else the first invariant (None: none).

        predict's hotspots name a boundary and an anomaly, not an invariant, so no hotspot
        can choose one yet; the first invariant is the one a pipeline names first."""
        if self.target is not None:
            return self.target
        return self.invariants[0].name if self.invariants else None

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
