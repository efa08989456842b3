"""The counter service as a running system for the agent's tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent.parent / "system"))  # kube_fake, the FAKE API server

from heisen.system import SystemHandle
from support import COUNTER, started_system


def counter_pipeline(directory: Path, *, contain: dict[str, object]) -> Path:
    shutil.copytree(COUNTER, directory)
    path = directory / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    data["services"]["counter"]["image"] = "ghcr.io/example/counter:1"
    data["phases"]["contain"] = contain
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def local_counter(tmp_path: Path) -> Iterator[tuple[Path, SystemHandle]]:
    """The counter pipeline (contain on kubernetes, 2 trials of a 40-request burst) and the
    counter system running on this machine, where an agent's plan can point."""
    pipeline = counter_pipeline(
        tmp_path / "pipeline", contain={"backend": "kubernetes", "trials": 2}
    )
    with started_system(pipeline, tmp_path / "system", run_id="agent") as system:
        yield pipeline, system
