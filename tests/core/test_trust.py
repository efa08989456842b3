"""A verdict is never silently wrong: what cannot be evaluated is an error, what was not tested is
inconclusive, and a finding shows the values it compared. Real runs on the counter service."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from heisen.system._handle import OWNER_FILE
from support import COUNTER, heisen, manifest_of

pytestmark = pytest.mark.slow


def counter_pipeline(
    tmp_path: Path, *, invariant: str, mode: str = "buggy", extra: str = ""
) -> Path:
    """The counter pipeline with its invariant replaced (YAML flow mapping text)."""
    target = tmp_path / "counter"
    if not target.exists():
        shutil.copytree(COUNTER, target)
    text = (COUNTER / "pipeline.yaml").read_text().replace("MODE: buggy", f"MODE: {mode}")
    head, _, _ = text.partition("invariants:")
    pipeline = target / "pipeline.yaml"
    pipeline.write_text(
        f"{head}invariants:\n  - {invariant}\n{extra}phases:\n  stress:\n    trials: 3\n"
    )
    return pipeline


def stress(pipeline: Path, run_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = heisen("stress", str(pipeline), "--run-dir", str(run_dir), "--ci", *args)
    return result, manifest_of(run_dir)


@pytest.mark.parametrize(
    ("invariant", "named"),
    [
        (
            # validate cannot know the columns of SELECT *: the run finds the typo
            '{name: typo, sql: "SELECT * FROM counter", expect: valu == n}',
            "valu",
        ),
        ('{name: table, sql: "SELECT n FROM hitz", expect: n >= 0}', "hitz"),
        ("{name: field, http: {method: GET, path: /n}, expect: body.valeu >= 0}", "valeu"),
        ('{name: redis-kind, sql: "SELECT 1/0 AS n", expect: n == 1}', "division by zero"),
    ],
)
def test_an_invariant_the_pipeline_got_wrong_is_an_error_exit_2_never_a_pass(
    tmp_path, invariant, named
):
    pipeline = counter_pipeline(tmp_path, invariant=invariant)
    result, manifest = stress(pipeline, tmp_path / "run")
    assert result.returncode == 2, result.stderr[-2000:]
    assert manifest["status"] == "error"
    phase = manifest["phases"]["stress"]
    assert phase["status"] == "error"
    assert named in phase["error"]["message"]
    (error,) = phase["outputs"]["trial_errors"]
    assert error["trial"] == 1 and error["kind"] == "pipeline" and named in error["message"]
    assert named in result.stderr


def test_a_dependency_killed_mid_run_is_an_environment_error_exit_3(tmp_path):
    pipeline = counter_pipeline(
        tmp_path,
        invariant='{name: logged, sql: "SELECT n, (SELECT count(*) FROM incr_log) AS logged FROM counter", expect: n <= logged}',
        mode="fixed",
    )
    pipeline.write_text(pipeline.read_text().replace("trials: 3", "trials: 500"))
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "heisen",
            "stress",
            str(pipeline),
            "--run-dir",
            str(run_dir),
            "--ci",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        postmaster = _wait_for_trials(process)
        os.kill(postmaster, signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 3, stderr[-3000:]
    manifest = manifest_of(run_dir)
    assert manifest["status"] == "error"
    stress_record = manifest["phases"]["stress"]
    assert stress_record["status"] == "error"
    assert stress_record["outputs"]["trials"] >= 1, "the trials before the kill are kept"
    (error,) = stress_record["outputs"]["trial_errors"]
    assert error["kind"] == "environment"


def _wait_for_trials(process: subprocess.Popen) -> int:
    """The pid of the PostgreSQL this run started, a few seconds into its 500 trials."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        for work_dir in Path(tempfile.gettempdir()).glob("heisen-*"):
            owner = work_dir / OWNER_FILE
            if owner.exists() and owner.read_text().strip() == str(process.pid):
                pids = list(work_dir.glob("**/postmaster.pid"))
                if pids:
                    time.sleep(6)
                    return int(pids[0].read_text().splitlines()[0])
        time.sleep(0.2)
    raise AssertionError("embedded PostgreSQL never started")


def test_a_lossy_counter_is_caught_over_the_load_with_the_values_compared(tmp_path):
    pipeline = counter_pipeline(
        tmp_path,
        invariant="{name: every-ok-counted, http: {method: GET, path: /n}, expect: body.n == load.incr.ok}",
    )
    result, manifest = stress(pipeline, tmp_path / "run")
    assert result.returncode == 1, result.stderr[-2000:]
    finding = manifest["phases"]["stress"]["outputs"]["findings"][0]
    evidence = finding["evidence"]
    assert evidence["load.incr.ok"] == 40
    assert evidence["body.n"] < 40
    assert (
        f"body.n={evidence['body.n']}" in result.stdout.replace(" ", "")
        or "body.n" in result.stdout
    )


def test_the_fixed_counter_holds_over_the_load(tmp_path):
    pipeline = counter_pipeline(
        tmp_path,
        invariant="{name: every-ok-counted, http: {method: GET, path: /n}, expect: body.n == load.incr.ok and load.incr.sent == 40}",
        mode="fixed",
    )
    result, manifest = stress(pipeline, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert manifest["phases"]["stress"]["outputs"]["outcomes"]["ok"] == 120


def test_load_that_never_contends_is_inconclusive_exit_4(tmp_path):
    pipeline = counter_pipeline(
        tmp_path,
        invariant='{name: logged, sql: "SELECT n, (SELECT count(*) FROM incr_log) AS logged FROM counter", expect: n == logged}',
    )
    text = pipeline.read_text().replace(
        "- burst: {requests: 40}", "- constant: {copies: 1, during: 300ms, request: incr}"
    )
    pipeline.write_text(text)
    result, manifest = stress(pipeline, tmp_path / "run")
    assert result.returncode == 4, result.stderr[-2000:]
    assert manifest["status"] == "inconclusive"
    phase = manifest["phases"]["stress"]
    assert phase["status"] == "inconclusive"
    assert "in flight" in phase["inconclusive_reason"]
    allowed, _ = stress(pipeline, tmp_path / "run2", "--allow-inconclusive")
    assert allowed.returncode == 0, allowed.stderr[-2000:]


def test_a_crash_inside_a_phase_exits_3_with_the_manifest_and_reports(tmp_path, monkeypatch):
    """heisen's own bug mid-phase: exit 3 (never 1), the phase and run `error`, reports written."""
    from typer.testing import CliRunner

    import heisen.stress
    from heisen.cli import (
        _commands,  # noqa: F401
        app,
    )

    def broken(ctx):
        raise RuntimeError("a bug in heisen")

    monkeypatch.setattr(heisen.stress, "run", broken)
    pipeline = counter_pipeline(
        tmp_path,
        invariant='{name: logged, sql: "SELECT n FROM counter", expect: n >= 0}',
    )
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["stress", str(pipeline), "--run-dir", str(run_dir), "--ci"])
    assert result.exit_code == 3, result.output
    manifest = yaml.safe_load((run_dir / "manifest.yaml").read_text())
    assert manifest["status"] == "error"
    assert manifest["phases"]["stress"]["status"] == "error"
    assert "a bug in heisen" in manifest["phases"]["stress"]["error"]["message"]
    assert "RuntimeError" in (run_dir / "heisen-crash.log").read_text()
    assert (run_dir / "junit.xml").exists()


def test_confidence_runs_the_trials_that_prove_a_bound_or_says_it_is_not_proven(tmp_path):
    invariant = '{name: logged, sql: "SELECT n, (SELECT count(*) FROM incr_log) AS logged FROM counter", expect: n == logged}'
    pipeline = counter_pipeline(tmp_path, invariant=invariant, mode="fixed")
    proving = pipeline.read_text().replace(
        "trials: 3", "trials: 3\n    confidence: {rate_below: 10%, level: 95%, max_duration: 2m}"
    )
    pipeline.write_text(proving)
    result, manifest = stress(pipeline, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = manifest["phases"]["stress"]["outputs"]
    assert outputs["trials"] == 29  # ln(0.05) / ln(0.9), rounded up
    assert outputs["bound"] == {
        "rate_below": 0.1,
        "level": 0.95,
        "trials": 29,
        "needed": 29,
        "upper": outputs["bound"]["upper"],
        "proven": True,
    }
    assert outputs["bound"]["upper"] < 0.1 and outputs["trials_per_s"] > 0
    assert "below 10% with 95% confidence (0 violations in 29 trials)" in result.stderr

    pipeline.write_text(proving.replace("max_duration: 2m", "max_duration: 1ms"))
    result, manifest = stress(pipeline, tmp_path / "run-short")
    assert result.returncode == 4, result.stderr[-2000:]
    phase = manifest["phases"]["stress"]
    assert phase["status"] == "inconclusive" and phase["outputs"]["trials"] == 1
    assert phase["inconclusive_reason"].startswith("not proven: 1 of the 29 trials needed")


def test_confidence_stops_at_the_first_violation_and_the_replay_runs_fixed_trials(tmp_path):
    invariant = '{name: logged, sql: "SELECT n, (SELECT count(*) FROM incr_log) AS logged FROM counter", expect: n == logged}'
    pipeline = counter_pipeline(tmp_path, invariant=invariant)
    pipeline.write_text(
        pipeline.read_text().replace("trials: 3", "trials: 3\n    confidence: {rate_below: 1%}")
    )
    result, manifest = stress(pipeline, tmp_path / "run")
    assert result.returncode == 1, result.stderr[-2000:]
    outputs = manifest["phases"]["stress"]["outputs"]
    assert outputs["violations"] == 1 and outputs["trials"] < 299
    assert outputs["bound"]["proven"] is False
    replay = outputs["findings"][0]["replay"]
    assert replay.endswith("--seed 7 --trials 20")
    _, manifest = stress(pipeline, tmp_path / "replay", "--trials", "4")
    assert manifest["phases"]["stress"]["outputs"]["trials"] == 4
    assert "bound" not in manifest["phases"]["stress"]["outputs"]


CRASHING_VALIDATE = """
import heisen.pipeline


def broken(path):
    raise RuntimeError("a bug in heisen's loader")


heisen.pipeline.load_pipeline = broken
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_outside_a_run_exits_3_with_its_traceback_in_a_log(tmp_path, debug):
    injected = tmp_path / "injected"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(CRASHING_VALIDATE)
    env = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "PYTHONPATH": str(injected)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "heisen",
            *(["--debug"] if debug else []),
            "validate",
            str(COUNTER / "pipeline.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert "this is a bug in heisen, not a finding" in result.stderr
    log = Path(result.stderr.split("the traceback is in ")[1].split()[0])
    assert "RuntimeError: a bug in heisen's loader" in log.read_text()
    log.unlink()
    assert ("Traceback" in result.stderr) is debug


def test_a_history_invariant_the_load_never_exercises_is_inconclusive_unless_left_out(tmp_path):
    invariant = '{name: logged, sql: "SELECT n, (SELECT count(*) FROM incr_log) AS logged FROM counter", expect: n == logged}\n  - {name: reads-fresh, history: register}'
    pipeline = counter_pipeline(tmp_path, invariant=invariant, mode="fixed")
    text = (
        pipeline.read_text()
        .replace(
            "      json: {by: 1}\n",
            "      json: {by: 1}\n    read: {method: GET, path: /n, history: {f: read, key: n, value: response.n}}\n",
        )
        .replace("- burst: {requests: 40}", "- burst: {requests: 40, request: incr}")
    )
    pipeline.write_text(text)
    result, manifest = stress(pipeline, tmp_path / "run")
    assert result.returncode == 4, result.stderr[-2000:]
    reason = manifest["phases"]["stress"]["inconclusive_reason"]
    assert reason.startswith(
        "reads-fresh could not be decided in trial 1: no request with history:"
    )

    pipeline.write_text(text.replace("trials: 3", "trials: 3\n    invariants: [logged]"))
    result, manifest = stress(pipeline, tmp_path / "run-chosen")
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(manifest["phases"]["stress"]["outputs"]["per_invariant"]) == ["logged"]

    pipeline.write_text(text.replace("trials: 3", "trials: 3\n    invariants: [loged]"))
    result = heisen("validate", str(pipeline))
    assert result.returncode == 2
    assert "phases.stress.invariants[0]" in result.stderr
    assert "no invariant named 'loged'; did you mean 'logged'?" in " ".join(result.stderr.split())
