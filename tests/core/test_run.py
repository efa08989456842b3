"""`heisen run` end to end on the counter service: real PostgreSQL, replicas, proxies."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from support import COUNTER, heisen, manifest_of


@pytest.fixture
def counter(tmp_path):
    target = tmp_path / "counter"
    shutil.copytree(COUNTER, target)
    return target


@pytest.mark.slow
def test_a_real_race_exits_1_with_the_manifest_contract(counter, tmp_path):
    run_dir = tmp_path / "run"
    result = heisen("run", str(counter / "pipeline.yaml"), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stderr
    manifest = manifest_of(run_dir)
    assert manifest["apiVersion"] == "heisen/v1" and manifest["kind"] == "RunManifest"
    assert manifest["status"] == "failed"
    assert set(manifest["run"]) >= {
        "id",
        "pipeline",
        "pipeline_sha256",
        "seed",
        "started_at",
        "finished_at",
        "heisen_version",
    }
    assert list(manifest["phases"]) == ["predict", "stress", "fuzz", "isolate", "contain", "chaos"]
    assert manifest["phases"]["predict"]["status"] == "skipped"
    assert manifest["phases"]["predict"]["skip_reason"]
    stress = manifest["phases"]["stress"]
    assert stress["status"] == "failed"
    outputs = stress["outputs"]
    for key in (
        "trials",
        "violations",
        "violation_rate",
        "ci95",
        "requests",
        "rps",
        "latency_ms",
        "status_codes",
        "errors",
    ):
        assert key in outputs
    assert outputs["violations"] >= 1
    assert set(outputs["latency_ms"]) >= {"p50", "p90", "p99", "max"}
    assert outputs["ci95"][0] <= outputs["violation_rate"] <= outputs["ci95"][1]
    assert "replay: heisen stress" in result.stdout
    assert (run_dir / "logs" / "counter-0.log").exists()


@pytest.mark.slow
def test_the_fixed_service_exits_0(counter, tmp_path):
    pipeline = counter / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("MODE: buggy", "MODE: fixed"))
    result = heisen("run", str(pipeline), "--run-dir", str(tmp_path / "run"), "--only", "stress")
    assert result.returncode == 0, result.stderr
    assert manifest_of(tmp_path / "run")["phases"]["stress"]["outputs"]["violations"] == 0


@pytest.mark.slow
def test_expect_violation_and_json(counter, tmp_path):
    result = heisen(
        "stress",
        str(counter / "pipeline.yaml"),
        "--run-dir",
        str(tmp_path / "run"),
        "--expect",
        "violation",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["phases"]["stress"]["outputs"]["violations"] >= 1


@pytest.mark.slow
def test_a_service_that_does_not_start_exits_3_with_its_log(counter, tmp_path):
    (counter / "counter_service.py").write_text(
        "import sys\nprint('boom: no config')\nsys.exit(4)\n"
    )
    result = heisen("run", str(counter / "pipeline.yaml"), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 3, result.stderr
    assert "boom: no config" in result.stderr
    manifest = manifest_of(tmp_path / "run")
    assert manifest["status"] == "error"
    assert manifest["phases"]["stress"]["status"] == "error"


@pytest.mark.slow
def test_resume_continues_what_did_not_pass(counter, tmp_path):
    run_dir = tmp_path / "run"
    first = heisen("run", str(counter / "pipeline.yaml"), "--run-dir", str(run_dir))
    assert first.returncode == 1
    pipeline = counter / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("MODE: buggy", "MODE: fixed"))
    changed = heisen("run", "--resume", str(run_dir))
    assert changed.returncode == 2
    assert "changed since the run" in " ".join(changed.stderr.split())  # wrapped at a long path


def test_a_run_killed_outright_has_its_temp_dir_swept_by_the_next(tmp_path):
    from heisen.system._handle import OWNER_FILE, sweep_stale_work_dirs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "heisen-old-run-abc"
    (stale / "postgres").mkdir(parents=True)
    (stale / OWNER_FILE).write_text(str(dead.pid))
    alive = tmp_path / "heisen-live-run-def"
    alive.mkdir()
    (alive / OWNER_FILE).write_text(str(os.getpid()))
    unrelated = tmp_path / "heisen-pg-xyz"
    unrelated.mkdir()
    assert sweep_stale_work_dirs(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and unrelated.exists()
