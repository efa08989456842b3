"""Helpers for the contain tests: the counter pipeline with a contain section, heisen in a subprocess."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import yaml

import support

# re-exported for the contain tests
from support import COUNTER as COUNTER
from support import manifest_of as manifest_of

CGROUP_MOUNTS = Path("/sys/fs/cgroup")

# A 200-request burst makes each of the two replicas want more than 25 ms of CPU per
# 100 ms period, so a 250m quota throttles them (a 40-request burst may not: measured).
CONTAIN = {
    "trials": 2,
    "load": [{"burst": {"requests": 200}}],
    "resources": {"counter": {"cpu": "250m", "memory": "256Mi"}},
}


heisen = partial(support.heisen, columns=160, path=support.inherited_path())


def write_pipeline(directory: Path, contain: dict[str, object], **service: object) -> Path:
    path = directory / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    data["phases"]["contain"] = contain
    data["services"]["counter"].update(service)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cgroups_unwritable() -> str | None:
    from heisen.system._cgroups import CgroupManager

    reason: str | None = CgroupManager("contain-test-probe").available()
    return reason


def run_cgroups(run_id: str) -> list[Path]:
    """Directories heisen made for `run_id` in any hierarchy (there must be none after a run)."""
    return sorted(
        p
        for p in CGROUP_MOUNTS.glob("*/heisen/*")
        if p.is_dir() and p.name.startswith(f"{run_id}-")
    )
