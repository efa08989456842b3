"""`history: {model: rate}` in a pipeline: a single-use coupon redeemed twice is caught from the
recorded history (no probe can state it), and the locked coupon holds."""

import shutil
from pathlib import Path

import pytest
from test_run import heisen, manifest_of

COUPON = Path(__file__).parent / "coupon"

pytestmark = pytest.mark.slow


def run(tmp_path: Path, mode: str) -> tuple[int, dict, str]:
    target = tmp_path / "coupon"
    shutil.copytree(COUPON, target)
    pipeline = target / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("MODE: buggy", f"MODE: {mode}"))
    run_dir = tmp_path / "run"
    result = heisen("stress", str(pipeline), "--run-dir", str(run_dir), "--ci")
    return result.returncode, manifest_of(run_dir), result.stderr


def test_a_coupon_redeemed_twice_exceeds_its_rate(tmp_path):
    code, manifest, stderr = run(tmp_path, "buggy")
    assert code == 1, stderr[-2000:]
    finding = manifest["phases"]["stress"]["outputs"]["findings"][0]
    assert finding["name"] == "redeemed-once"
    assert "rate-exceeded" in finding["message"]
    assert len(finding["evidence"]["operations"]) >= 2


def test_the_locked_coupon_is_redeemed_once(tmp_path):
    code, manifest, stderr = run(tmp_path, "fixed")
    assert code == 0, stderr[-2000:]
    verdicts = manifest["phases"]["stress"]["outputs"]["per_invariant"]["redeemed-once"]
    assert verdicts["violations"] == 0


def test_a_load_that_only_timed_out_is_inconclusive_unless_the_pipeline_allows_it(tmp_path):
    target = tmp_path / "coupon"
    shutil.copytree(COUPON, target)
    pipeline = target / "pipeline.yaml"
    text = pipeline.read_text().replace("MODE: buggy", "MODE: fixed")
    text = text.replace("  setup:\n", "  timeout: 5ms\n  setup:\n")  # the lookup alone takes 20 ms
    pipeline.write_text(text)
    result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"), "--ci")
    assert result.returncode == 4, result.stderr[-2000:]
    stress = manifest_of(tmp_path / "run")["phases"]["stress"]
    assert "scenario.unknown_outcomes allows" in stress["inconclusive_reason"]
    assert stress["outputs"]["outcomes"]["info"] >= 20  # trial 1 at least: every request timed out

    pipeline.write_text(
        text.replace("  timeout: 5ms\n", "  timeout: 5ms\n  unknown_outcomes: 100%\n")
    )
    result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run2"), "--ci")
    assert result.returncode == 0, result.stderr[-2000:]
