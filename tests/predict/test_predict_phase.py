"""The predict phase through the CLI: hotspots in the manifest, and calibration against a measured run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TICKETING = Path(__file__).resolve().parents[2] / "examples" / "ticketing"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ticketing pipeline with predict on its architecture model (the example observes)."""
    folder = tmp_path_factory.mktemp("model") / "ticketing"
    shutil.copytree(TICKETING, folder)
    text = (folder / "pipeline.yaml").read_text()
    start = text.index("  predict:")
    end = text.index("    agents: 250")
    model = "  predict:\n    architecture: architecture.yaml\n    incidents: incidents.yaml\n"
    (folder / "pipeline.yaml").write_text(text[:start] + model + text[end:])
    return folder / "pipeline.yaml"


def predict(pipeline: Path, *args: str) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "heisen",
            "predict",
            str(pipeline),
            "--cycles",
            "300",
            *args,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["phases"]["predict"]["outputs"]


@pytest.mark.slow
def test_hotspots_rank_the_checkout_race_first(tmp_path, pipeline):
    outputs = predict(pipeline, "--run-dir", str(tmp_path / "run"))
    top = outputs["hotspots"][0]
    assert (top["boundary"], top["anomaly"]) == ("inventory → redis", "check-then-act")
    assert {"score", "predicted_violation_rate", "load"} <= set(top)
    assert any(h["anomaly"] == "stale-read" for h in outputs["hotspots"])


@pytest.mark.slow
def test_calibration_sets_predicted_beside_observed(tmp_path, pipeline):
    measured = tmp_path / "measured"
    measured.mkdir()
    manifest = {
        "apiVersion": "heisen/v1",
        "kind": "RunManifest",
        "status": "failed",
        "run": {
            "id": "m",
            "pipeline": str(pipeline),
            "pipeline_sha256": "0",
            "seed": 1,
            "started_at": "t",
            "heisen_version": "0",
        },
        "phases": {
            "stress": {
                "status": "failed",
                "outputs": {
                    "trials": 20,
                    "violations": 15,
                    "violation_rate": 0.75,
                    "requests": 4000,
                    "latency_ms": {"p50": 13.0, "p90": 30.0, "p99": 99.0},
                    "per_invariant": {
                        "no-oversell": {"trials": 20, "violations": 15, "violation_rate": 0.75}
                    },
                },
            }
        },
    }
    (measured / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    calibration = predict(
        pipeline, "--calibrate", str(measured), "--run-dir", str(tmp_path / "run")
    )["calibration"]
    assert calibration["target"] == "no-oversell"
    assert calibration["model"]["operation"] == "inventory.checkout"
    assert calibration["model"]["latency_ms"] == 13.0  # no request was refused: the p50
    [row] = calibration["points"]
    assert row["source"] == "stress" and row["load"] == 200 and row["observed"] == 0.75
    # No sweep ran: there is no smallest burst to compare, and the verdict is said either way.
    assert "smallest_reproducing_burst" not in calibration
    assert calibration["within_2x"] is row["within_2x"]
    if not calibration["within_2x"]:
        assert "at 200 requests" in calibration["reason"]
