"""The run manifest: one YAML file that every phase reads and extends.

The keys below are a contract that CI and other tools read (DESIGN.md). The
file is written atomically (a temporary file, fsync, rename) after every
phase change, so a crash or Ctrl-C always leaves a valid manifest behind.
"""

from __future__ import annotations

import math
import os
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from heisen._redact import redact
from heisen._serialised import JsonObject
from heisen.errors import UsageError

MANIFEST_NAME = "manifest.yaml"


class PhaseStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    SKIPPED = "skipped"


class RunStatus(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", use_enum_values=True)


class PhaseError(_Record):
    type: str
    message: str


class PhaseRecord(_Record):
    status: PhaseStatus = PhaseStatus.PENDING
    skip_reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    summary: str | None = None
    outputs: JsonObject = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)
    error: PhaseError | None = None
    inconclusive_reason: str | None = None


class TeardownRecord(_Record):
    """Something that did not stop cleanly when the run ended."""

    what: str
    error: str


class LadderStep(_Record):
    """One load phase's figures for the ladder's target invariant.

    `amplification`: this step's violation rate over the previous measured step's, for the
    same invariant (None on the first step, or when that rate was 0). `per_operation_rate`:
    `{mean, ci95, trials}` of the invariant's `severity:` (None when it declares none).
    `smallest_reproducing_burst`: the smallest burst of the phase's sweep that reproduced the
    target in at least half its trials (None: no sweep, or none up to its max did)."""

    phase: str
    violation_rate: float | None = None
    ci95: tuple[float, float] | None = None
    per_operation_rate: JsonObject | None = None
    smallest_reproducing_burst: int | None = None
    amplification: float | None = None
    condition: str | None = None  # what escalation found reproduces it (`a->b +100 ms`)


class Ladder(_Record):
    """The race the ladder follows (`target`, an invariant) and its steps, phase by phase."""

    target: str
    steps: list[LadderStep] = Field(default_factory=list)


class RunInfo(_Record):
    id: str
    pipeline: str
    pipeline_sha256: str
    seed: int
    started_at: str
    finished_at: str | None = None
    heisen_version: str


class RunManifest(_Record):
    apiVersion: str = "heisen/v1"
    kind: str = "RunManifest"
    run: RunInfo
    status: RunStatus = RunStatus.RUNNING
    phases: dict[str, PhaseRecord] = Field(default_factory=dict)
    teardown: list[TeardownRecord] = Field(default_factory=list)  # written only when not empty
    pipeline: JsonObject = Field(default_factory=dict)  # the YAML as read (serialisation)
    system: JsonObject | None = None  # what ran where (`System.describe()`): serialisation
    ladder: Ladder | None = None  # written after the first load phase (`heisen.ladder`)

    def phase(self, name: str) -> PhaseRecord:
        return self.phases.setdefault(name, PhaseRecord())

    def to_plain(self) -> JsonObject:
        data = self.model_dump(mode="json", exclude_none=True)
        if self.ladder is not None:  # its nulls are figures not measured: they stay
            data["ladder"] = self.ladder.model_dump(mode="json")
        if not data.get("teardown"):
            data.pop("teardown", None)
        for record in data.get("phases", {}).values():
            record.setdefault("outputs", {})
        return redact(plain(data))  # type: ignore[no-any-return]

    def save(self, run_dir: Path) -> Path:
        return write_atomically(run_dir / MANIFEST_NAME, dump_yaml(self.to_plain()))

    @classmethod
    def load(cls, run_dir: Path) -> RunManifest:
        path = run_dir / MANIFEST_NAME
        if not path.is_file():
            raise UsageError(f"{run_dir} holds no {MANIFEST_NAME}: is it a heisen run directory?")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except (yaml.YAMLError, ValueError) as exc:
            raise UsageError(f"{path} is not a valid run manifest: {exc}") from exc


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """Only YAML/JSON-native values: tuples become lists, NaN and infinities become None."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    if isinstance(value, StrEnum):
        return str(value)
    return str(value)


def dump_yaml(data: Any) -> str:
    text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    return text


def write_atomically(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
