"""Helpers of the chaos tests: pipeline copies, phase contexts, leak checks."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heisen.events import Event
from heisen.manifest import RunInfo, RunManifest
from heisen.phase import PhaseContext
from heisen.pipeline import load_pipeline
from heisen.system import SystemHandle

HERE = Path(__file__).parent


def pipeline_copy(tmp: Path, name: str = "ledger.yaml", **replace: str) -> Path:
    """A copy of one of this folder's pipelines (with its service and SQL), text replaced as asked."""
    target = tmp / "pipeline"
    target.mkdir(exist_ok=True)
    for file in ("ledger_service.py", "ledger.sql"):
        shutil.copy(HERE / file, target / file)
    text = (HERE / name).read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = target / name
    path.write_text(text)
    return path


def context(
    path: Path, system: SystemHandle, run_dir: Path, emit: Callable[[Event], None] | None = None
) -> PhaseContext:
    loaded = system.loaded if system.loaded.path == path else load_pipeline(path)
    manifest = RunManifest(
        run=RunInfo(
            id=run_dir.name,
            pipeline=str(path),
            pipeline_sha256=loaded.sha256,
            seed=5,
            started_at="now",
            heisen_version="test",
        )
    )
    return PhaseContext(
        loaded=loaded,
        manifest=manifest,
        system=system,
        seed=5,
        run_dir=run_dir,
        emit=emit or (lambda event: None),
    )


def burner_pids() -> list[int]:
    """Live processes started as chaos CPU burners (HEISEN_BURNER in their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if b"HEISEN_BURNER=" in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def no_faults_left(system: Any) -> None:
    for link in system.links():
        proxy = system.proxies.proxy(link)
        assert proxy.get("enabled", True), f"{link} left disabled"
        assert not system.proxies.toxics(link), f"{link} kept toxics {system.proxies.toxics(link)}"
    assert not burner_pids(), f"burners left: {burner_pids()}"
