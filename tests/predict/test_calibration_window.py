"""predict calibrated on what stress measured, on a shop whose race window the test sets
(tests/stress/window/window_service.py): inside `heisen run`, after stress, predict refits the
window and the burst's spread and predicts the target at every load stress ran."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import heisen, manifest_of

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent / "window"
SERVICE = Path(__file__).parents[1] / "stress" / "window" / "window_service.py"


def shop(tmp_path: Path, *, capacity: int, window_ms: int) -> Path:
    target = tmp_path / "shop"
    shutil.copytree(HERE, target)
    shutil.copy(SERVICE, target / SERVICE.name)
    pipeline = target / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace(
            "capacity: 4, window_ms: 300", f"capacity: {capacity}, window_ms: {window_ms}"
        )
    )
    architecture = target / "architecture.yaml"
    architecture.write_text(architecture.read_text().replace("stock: 4\n", f"stock: {capacity}\n"))
    return pipeline


@pytest.mark.parametrize(
    ("capacity", "window_ms", "smallest"), [(1, 300, 2), (2, 100, 4), (4, 20, 8)]
)
def test_the_calibrated_prediction_is_within_2x_where_stress_measured(
    tmp_path: Path, capacity: int, window_ms: int, smallest: int
) -> None:
    pipeline = shop(tmp_path, capacity=capacity, window_ms=window_ms)
    run = tmp_path / "run"
    result = heisen(
        "run", str(pipeline), "--only", "predict", "--only", "stress", "--run-dir", str(run)
    )
    assert result.returncode == 1, result.stderr  # the burst of 16 oversells
    manifest = manifest_of(run)
    predict = manifest["phases"]["predict"]
    calibration = predict["outputs"]["calibration"]
    assert calibration["target"] == "no-oversell"
    points = calibration["points"]
    # The main load (16 per trial) and every burst the sweep tried, up to the one that reproduced.
    sweep = manifest["phases"]["stress"]["outputs"]["sweep"]
    assert [(p["source"], p["load"]) for p in points] == [("stress", 16)] + [
        ("sweep", step["requests"]) for step in sweep["tried"]
    ]
    for point in points:
        assert point["within_2x"], point
        if point["observed"] > 0:
            assert 0.5 <= point["predicted"] / point["observed"] <= 2.0, point
        else:  # a burst within the capacity cannot oversell, and the model knows it
            assert point["predicted"] * point["trials"] < 0.5, point
    assert sum(1 for p in points if p["observed"] > 0) >= 2
    assert calibration["within_2x"] is True
    assert 0.5 <= calibration["ratio"] <= 2.0
    burst = calibration["smallest_reproducing_burst"]
    assert burst["observed"] == smallest
    assert burst["within_one_step"] is True
    sizes = burst["sizes"]
    assert abs(sizes.index(burst["predicted"]) - sizes.index(smallest)) <= 1
    # What the model was refitted on: the shop's window, not the architecture's 1 ms guess.
    model = calibration["model"]
    assert model["operation"] == "shop.buy"
    assert model["steps_ms"]["3 call window"] > window_ms * 0.5
    assert (
        f"calibrated on no-oversell: within 2x at {len(points)}/{len(points)} loads"
        in (predict["summary"])
    )


def test_predict_calibrate_reads_the_same_run_and_says_what_the_guess_missed(
    tmp_path: Path,
) -> None:
    pipeline = shop(tmp_path, capacity=4, window_ms=20)
    run = tmp_path / "run"
    heisen("run", str(pipeline), "--only", "predict", "--only", "stress", "--run-dir", str(run))
    inside = manifest_of(run)["phases"]["predict"]["outputs"]
    # Uncalibrated, the guessed 1 ms window and 100 ms of arrivals see a rare race at 16.
    assert inside["hotspots"][0]["predicted_violation_rate"] < 0.5
    again = tmp_path / "again"
    result = heisen("predict", str(pipeline), "--calibrate", str(run), "--run-dir", str(again))
    assert result.returncode == 0, result.stderr
    calibration = manifest_of(again)["phases"]["predict"]["outputs"]["calibration"]
    assert calibration["run"] == str(run)
    assert [(p["load"], p["predicted"]) for p in calibration["points"]] == [
        (p["load"], p["predicted"]) for p in inside["calibration"]["points"]
    ]
    assert calibration["within_2x"] is True
