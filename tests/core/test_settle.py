"""`settle:` runs an invariant that long after the load: "durable within 1 s" is a checkable promise."""

import shutil
from pathlib import Path

import pytest
from test_run import heisen, manifest_of

LAZY = Path(__file__).parent / "lazy"

pytestmark = pytest.mark.slow


def run(tmp_path: Path, settle: str | None) -> tuple[int, dict]:
    target = tmp_path / "lazy"
    shutil.copytree(LAZY, target)
    pipeline = target / "pipeline.yaml"
    if settle is not None:
        pipeline.write_text(
            pipeline.read_text().replace(
                "expect: body.count == load.hit.ok",
                f"expect: body.count == load.hit.ok\n    settle: {settle}",
            )
        )
    run_dir = tmp_path / "run"
    result = heisen("stress", str(pipeline), "--run-dir", str(run_dir), "--ci")
    return result.returncode, manifest_of(run_dir)


def test_checked_at_once_a_write_applied_later_is_missing(tmp_path):
    code, manifest = run(tmp_path, None)
    assert code == 1
    evidence = manifest["phases"]["stress"]["outputs"]["findings"][0]["evidence"]
    assert evidence["load.hit.ok"] == 20 and evidence["body.count"] < 20


def test_with_settle_the_invariant_waits_and_holds(tmp_path):
    code, manifest = run(tmp_path, "1s")
    assert code == 0, manifest["phases"]["stress"]
    assert manifest["phases"]["stress"]["outputs"]["outcomes"]["ok"] == 40
