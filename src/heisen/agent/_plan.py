"""What the driver sends the agent: everything a phase needs, in one JSON document.

The pipeline travels as its folder's text files (the pipeline file and what
it references: OpenAPI documents, stub mappings, probe scripts), so the agent
loads and validates it exactly as the driver did. The environment variables
the pipeline's templates read (`{{ env.NAME }}`) travel with it. The run so
far travels as the manifest, so a phase reads earlier phases' outputs (the
ladder's target, stress's rate) as it would on this machine.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from heisen import __version__
from heisen._serialised import JsonObject
from heisen.errors import UsageError
from heisen.manifest import RunManifest
from heisen.pipeline import load_pipeline
from heisen.schema import LoadedPipeline, Resources
from heisen.system import Addresses

MAX_PLAN_BYTES = 900 * 1024  # a ConfigMap holds at most 1 MiB
_SKIPPED_DIRS = {"__pycache__", "node_modules", ".git", ".venv", "runs"}
_ENV_NAME = re.compile(r"env\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class AgentPlan:
    phase: str
    pipeline_file: str  # relative to the files' root
    files: dict[str, str]
    env: dict[str, str]
    run_id: str
    seed: int
    manifest: JsonObject
    options: JsonObject
    addresses: Addresses
    limits: dict[str, dict[str, float | int | None]]
    namespace: str
    labels: dict[str, str]
    cluster: str | None = None  # the API server, as the driver knows it
    in_cluster: bool = True  # replicas are pods read through the pod's service account
    kubeconfig: str | None = None  # else through this kubeconfig (an agent outside the cluster)
    version: str = field(default=__version__)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AgentPlan:
        data = json.loads(text)
        addresses = data.pop("addresses")
        return cls(
            **data,
            addresses=Addresses(
                services=dict(addresses["services"]),
                dependencies={k: (v[0], v[1]) for k, v in addresses["dependencies"].items()},
            ),
        )

    def resources(self) -> dict[str, Resources]:
        return {name: Resources.model_validate(spec) for name, spec in self.limits.items()}

    def materialise(self, directory: Path) -> LoadedPipeline:
        """Write the pipeline's files under `directory` and load the pipeline from there."""
        for name, text in self.files.items():
            path = (directory / name).resolve()
            if not path.is_relative_to(directory.resolve()):
                raise UsageError(f"the plan names a file outside its folder: {name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.environ.update(self.env)
        return load_pipeline(directory / self.pipeline_file)


def plan_for(
    loaded: LoadedPipeline,
    manifest: RunManifest,
    *,
    phase: str,
    seed: int,
    options: JsonObject,
    addresses: Addresses,
    limits: dict[str, Resources],
    namespace: str,
    labels: dict[str, str],
    cluster: str | None,
    skip: Path | None = None,
    in_cluster: bool = True,
) -> AgentPlan:
    """The plan of one phase; UsageError when the pipeline's folder is too big to send."""
    root = loaded.base_dir
    files = pipeline_files(root, skip)
    text = loaded.path.read_text(encoding="utf-8")
    plan = AgentPlan(
        phase=phase,
        pipeline_file=loaded.path.relative_to(root).as_posix(),
        files=files,
        env={name: os.environ[name] for name in _ENV_NAME.findall(text) if name in os.environ},
        run_id=manifest.run.id,
        seed=seed,
        manifest=manifest.to_plain(),
        options=dict(options),
        addresses=addresses,
        limits={name: r.model_dump() for name, r in limits.items()},
        namespace=namespace,
        labels=dict(labels),
        cluster=cluster,
        in_cluster=in_cluster,
    )
    size = len(plan.to_json().encode())
    if size > MAX_PLAN_BYTES:
        biggest = sorted(files, key=lambda name: -len(files[name]))[:3]
        raise UsageError(
            f"the pipeline's folder {root} is {size // 1024} KiB, more than the "
            f"{MAX_PLAN_BYTES // 1024} KiB heisen sends to its agent (a ConfigMap's limit); "
            f"move what the pipeline does not read elsewhere (largest: {', '.join(biggest)})"
        )
    return plan


def pipeline_files(root: Path, skip: Path | None = None) -> dict[str, str]:
    """The text files under `root` (not hidden, not caches, not run directories, not `skip`)."""
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") or part in _SKIPPED_DIRS for part in relative.parts):
            continue
        if skip is not None and path.resolve().is_relative_to(skip.resolve()):
            continue
        if not path.is_file() or (path.parent / "manifest.yaml").is_file():
            continue
        try:
            files[relative.as_posix()] = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a binary file: no pipeline reads one
    return files
