"""`heisen check`: start the system, run setup and every invariant once, print values, stop."""

import shutil
import subprocess
import sys

import pytest

from support import COUNTER

pytestmark = pytest.mark.slow


def test_check_prints_each_invariant_value_and_verdict(tmp_path):
    shutil.copytree(COUNTER, tmp_path / "counter")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "heisen",
            "check",
            str(tmp_path / "counter" / "pipeline.yaml"),
            "--run-dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "no-lost-update: n == logged held (n=0, logged=0" in result.stdout
    assert (tmp_path / "run" / "logs" / "counter-0.log").exists()
    assert not (tmp_path / "run" / "manifest.yaml").exists()  # check is not a run


def test_check_exits_1_when_an_invariant_does_not_hold(tmp_path):
    shutil.copytree(COUNTER, tmp_path / "counter")
    pipeline = tmp_path / "counter" / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("expect: n == logged", "expect: n == logged + 1")
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "heisen",
            "check",
            str(pipeline),
            "--run-dir",
            str(tmp_path / "run"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stderr
    assert '"held": false' in result.stdout
