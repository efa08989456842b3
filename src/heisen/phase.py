"""What every phase receives and returns.

Each phase package exposes `run(ctx: PhaseContext) -> PhaseResult`. Phases
never import each other; they meet in the manifest (what earlier phases
wrote) and the System (what is running; the runner chooses which one). The one shared engine is
`heisen.stress.run_trials`, which later phases re-run under their own
conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heisen._serialised import JsonObject
from heisen.events import Event, EventSink
from heisen.manifest import PhaseStatus, RunManifest
from heisen.schema import LoadedPipeline, PhaseName, Pipeline
from heisen.system_protocol import System

__all__ = ["Finding", "PhaseContext", "PhaseName", "PhaseResult", "PhaseRun"]


@dataclass(frozen=True, kw_only=True)
class PhaseContext:
    """Everything a phase may use. Keyword-only; phases must not keep it after `run` returns.

    - `loaded`: the validated pipeline and its location (relative paths resolve against it).
    - `manifest`: the run so far; read earlier phases' outputs from it, never write it.
    - `system`: the running system under test, as the runner chose it (on this machine, or in
      a cluster for contain's `backend: kubernetes`); None for phases that need none (predict).
    - `seed`: the run seed; derive sub-seeds with `heisen.seeds.derive(seed, phase, ...)`.
    - `run_dir`: where artifacts go (write them there and list them relative to it).
    - `emit`: the event sink (progress, trials, warnings) that drives the terminal view.
    - `options`: command-line overrides of this phase (e.g. `hotspot`, `agents`, `calibrate`).
    """

    loaded: LoadedPipeline
    manifest: RunManifest
    system: System | None
    seed: int
    run_dir: Path
    emit: EventSink
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pipeline(self) -> Pipeline:
        return self.loaded.pipeline

    def outputs_of(self, phase: str) -> JsonObject:
        record = self.manifest.phases.get(phase)
        return dict(record.outputs) if record else {}

    def ladder_target(self) -> str | None:
        """The invariant the ladder follows (`Pipeline.ladder_target`, given predict's hotspots)."""
        hotspots = self.outputs_of("predict").get("hotspots") or []
        return self.pipeline.ladder_target(hotspots)

    def notify(self, event: Event) -> None:
        self.emit(event)


@dataclass(frozen=True, slots=True)
class Finding:
    """A violated invariant or a failure: where, how often, how to replay it."""

    phase: str
    name: str
    message: str
    replay: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        data: JsonObject = {"phase": self.phase, "name": self.name, "message": self.message}
        if self.replay:
            data["replay"] = self.replay
        if self.evidence:
            data["evidence"] = dict(self.evidence)
        return data


@dataclass(slots=True)
class PhaseResult:
    status: PhaseStatus
    summary: str
    outputs: JsonObject = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    skip_reason: str | None = None
    findings: list[Finding] = field(default_factory=list)
    inconclusive_reason: str | None = None

    @classmethod
    def skipped(cls, reason: str) -> PhaseResult:
        return cls(status=PhaseStatus.SKIPPED, summary=f"skipped: {reason}", skip_reason=reason)

    @classmethod
    def inconclusive(
        cls, reason: str, outputs: JsonObject, artifacts: list[str] | None = None
    ) -> PhaseResult:
        """No violation, but the phase's condition never happened: it shows nothing."""
        return cls(
            PhaseStatus.INCONCLUSIVE,
            f"inconclusive: {reason}",
            outputs,
            list(artifacts or []),
            inconclusive_reason=reason,
        )


PhaseRun = Callable[[PhaseContext], PhaseResult]
"""What each phase package exports as `run`."""
