"""The burst sweep finds the smallest burst that reproduces the target: on a shop whose
race window the test sets (window/window_service.py), that size is known in advance."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import heisen, manifest_of

pytestmark = pytest.mark.slow

WINDOW = Path(__file__).parent / "window"


def shop(tmp_path: Path, *, capacity: int, window_ms: int, sweep: str) -> Path:
    target = tmp_path / "shop"
    shutil.copytree(WINDOW, target)
    text = (WINDOW / "pipeline.yaml").read_text()
    text = text.replace(
        "capacity: 4, window_ms: 300", f"capacity: {capacity}, window_ms: {window_ms}"
    )
    text = text.replace("sweep: {max: 32, trials: 3}", f"sweep: {sweep}")
    (target / "pipeline.yaml").write_text(text)
    return target / "pipeline.yaml"


@pytest.mark.parametrize(("capacity", "smallest"), [(1, 2), (4, 8)])
def test_the_smallest_reproducing_burst_is_the_first_size_above_the_capacity(
    tmp_path: Path, capacity: int, smallest: int
) -> None:
    # Every request of a burst lands inside a 300 ms window: a burst over the capacity
    # oversells in every trial, and one within it never can.
    pipeline = shop(tmp_path, capacity=capacity, window_ms=300, sweep="{max: 32, trials: 3}")
    result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    manifest = manifest_of(tmp_path / "run")
    sweep = manifest["phases"]["stress"]["outputs"]["sweep"]
    assert sweep["target"] == "no-oversell"
    tried = {step["requests"]: step for step in sweep["tried"]}
    assert list(tried) == [size for size in (2, 4, 8) if size <= smallest]
    for size, step in tried.items():
        # 2 of 3 trials decide "at least half" either way: the third never runs
        assert step["trials"] == 2, step
        assert step["violations"] == (2 if size > capacity else 0), step
        assert step["reproduced"] is (size > capacity)
    assert sweep["smallest_reproducing_load"] == {"requests": smallest, "violation_rate": 1.0}
    assert manifest["ladder"]["steps"][0]["smallest_reproducing_burst"] == smallest
    assert f"smallest reproducing burst {smallest}" in manifest["phases"]["stress"]["summary"]


def test_a_sweep_that_never_reproduces_says_so_and_leaves_the_ladder_empty(tmp_path: Path) -> None:
    pipeline = shop(tmp_path, capacity=8, window_ms=300, sweep="{max: 8, trials: 2}")
    result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr  # the main load of 16 still oversells
    manifest = manifest_of(tmp_path / "run")
    sweep = manifest["phases"]["stress"]["outputs"]["sweep"]
    assert [step["requests"] for step in sweep["tried"]] == [2, 4, 8]
    assert not any(step["violations"] for step in sweep["tried"])
    assert sweep["smallest_reproducing_load"] is None
    assert manifest["ladder"]["steps"][0]["smallest_reproducing_burst"] is None
    assert "no burst up to 8 reproduced no-oversell" in manifest["phases"]["stress"]["summary"]


def test_a_sweep_needs_half_its_trials_to_reproduce_not_one(tmp_path: Path) -> None:
    # The sweep's own setup: a window of 0 ms, where a burst of 2 over a capacity of 1
    # overlaps only by chance; whatever it finds, one violation in 5 is not "reproduced".
    pipeline = shop(
        tmp_path,
        capacity=1,
        window_ms=300,
        sweep="{max: 4, trials: 5, request: buy, setup: "
        "[{http: {method: POST, path: /reset, json: {capacity: 1, window_ms: 0}}}]}",
    )
    heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"))
    sweep = manifest_of(tmp_path / "run")["phases"]["stress"]["outputs"]["sweep"]
    for step in sweep["tried"]:
        assert step["reproduced"] is (step["violations"] >= 3), step  # 3 of 5
        # and the trials stop once that is decided: at the 3rd violation, or when 3 can no
        # longer be reached (3 trials past the violations so far)
        if step["reproduced"]:
            assert step["violations"] == 3 and step["trials"] <= 5, step
        else:
            assert step["trials"] == step["violations"] + 3, step
    smallest = sweep["smallest_reproducing_load"]
    assert (smallest is None) is not any(step["reproduced"] for step in sweep["tried"])


def test_a_sweep_that_cannot_tell_which_request_to_send_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    pipeline = shop(tmp_path, capacity=1, window_ms=0, sweep="{max: 4, request: sell}")
    result = heisen("validate", str(pipeline))
    assert result.returncode == 2
    assert "phases.stress.sweep.request" in result.stdout + result.stderr
    assert "no request named 'sell'" in result.stdout + result.stderr


@pytest.mark.parametrize(("window_ms", "smallest"), [(300, 4), (150, 8)])
def test_spread_over_a_second_the_smallest_burst_halves_when_the_window_doubles(
    tmp_path: Path, window_ms: int, smallest: int
) -> None:
    # One ticket; N buys 1000/N ms apart. The second buy oversells when it checks before the
    # first one sells: when the spacing is below the window. 300 ms: 4 (250 ms apart) but
    # not 2 (500 ms); 150 ms: 8 (125 ms) but not 4 (250 ms).
    pipeline = shop(
        tmp_path,
        capacity=1,
        window_ms=window_ms,
        sweep="{max: 16, trials: 3, spread: 1s}",
    )
    result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    sweep = manifest_of(tmp_path / "run")["phases"]["stress"]["outputs"]["sweep"]
    assert [step["requests"] for step in sweep["tried"]] == [2, 4, 8][
        : [2, 4, 8].index(smallest) + 1
    ]
    assert sweep["smallest_reproducing_load"]["requests"] == smallest, sweep["tried"]
    assert all(step["violations"] == 0 for step in sweep["tried"][:-1]), sweep["tried"]


def test_a_sweep_whose_bursts_test_nothing_says_so_instead_of_none_reproduced(
    tmp_path: Path,
) -> None:
    # The sweep's own setup leaves no stock: every buy is refused, no check-then-act ever ran.
    pipeline = shop(
        tmp_path,
        capacity=1,
        window_ms=300,
        sweep="{max: 8, trials: 2, setup: "
        "[{http: {method: POST, path: /reset, json: {capacity: 0, window_ms: 300}}}]}",
    )
    result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr  # the main load of 16 over 1 ticket oversells
    manifest = manifest_of(tmp_path / "run")
    sweep = manifest["phases"]["stress"]["outputs"]["sweep"]
    assert [step["requests"] for step in sweep["tried"]] == [2], "it stops where nothing was tested"
    assert sweep["unmeasured"].startswith("no request of the bursts of 2 succeeded"), sweep
    assert "409" in sweep["unmeasured"]
    assert sweep["smallest_reproducing_load"] is None
    assert manifest["ladder"]["steps"][0]["smallest_reproducing_burst"] is None
    summary = manifest["phases"]["stress"]["summary"]
    assert "the burst sweep measured nothing" in summary and "no burst up to" not in summary
