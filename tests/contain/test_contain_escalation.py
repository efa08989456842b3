"""contain with no cpu: escalation tries 500m, 250m and 100m and runs under the first that
reproduces; when none does, the outputs list each one tried."""

from __future__ import annotations

from pathlib import Path

import pytest
from contain_support import cgroups_unwritable, heisen, manifest_of, run_cgroups, write_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.cgroups]

SECTION = {"trials": 2, "load": [{"burst": {"requests": 40}}], "escalation": {"budget": "60s"}}


@pytest.fixture(autouse=True)
def _cgroups() -> None:
    reason = cgroups_unwritable()
    if reason is not None:
        pytest.skip(f"no writable cgroup hierarchy here: {reason}")


def test_the_first_cpu_limit_that_reproduces_is_the_one_contain_runs_under(
    counter: Path, tmp_path: Path
) -> None:
    pipeline = write_pipeline(counter, SECTION)  # the buggy counter loses updates under any
    run_dir = tmp_path / "run"
    result = heisen("contain", str(pipeline), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    manifest = manifest_of(run_dir)
    contain = manifest["phases"]["contain"]
    escalation = contain["outputs"]["escalation"]
    assert escalation["reproduced_with"] == "counter cpu=500m"
    assert [t["condition"] for t in escalation["tried"]] == ["counter cpu=500m"]
    assert escalation["tried"][0]["reproduced"] is True
    assert contain["outputs"]["limits"] == {"cpu": "500m", "memory": None}
    assert "reproduced with counter cpu=500m" in contain["summary"]
    assert manifest["ladder"]["steps"][0]["condition"] == "counter cpu=500m"
    assert "counter cpu=500m" in contain["outputs"]["findings"][0]["replay"]
    assert run_cgroups(run_dir.name) == []


def test_when_no_cpu_limit_reproduces_each_one_tried_is_listed(
    counter: Path, tmp_path: Path
) -> None:
    original = counter / "pipeline.yaml"
    original.write_text(original.read_text().replace("MODE: buggy", "MODE: fixed"))
    pipeline = write_pipeline(counter, {**SECTION, "trials": 1})
    run_dir = tmp_path / "run"
    heisen("contain", str(pipeline), "--run-dir", str(run_dir))
    contain = manifest_of(run_dir)["phases"]["contain"]
    escalation = contain["outputs"]["escalation"]
    assert escalation["reproduced_with"] is None
    assert [t["condition"] for t in escalation["tried"]] == [
        "counter cpu=500m",
        "counter cpu=250m",
        "counter cpu=100m",
    ]
    assert not any(t["reproduced"] for t in escalation["tried"])
    assert all(isinstance(t["acted"], bool) for t in escalation["tried"])  # throttling was read
    assert contain["outputs"]["limits"]["cpu"] == "100m"  # the last tried: still under a limit
    said = contain.get("summary") or ""
    assert contain["status"] != "passed" or "none reproduced" in said
    assert run_cgroups(run_dir.name) == []
