"""The command line: help, version, init → validate, and errors as exit codes without tracebacks."""

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

from typer.testing import CliRunner

import heisen.cli._commands
import support
from heisen import __version__
from heisen.cli import app

runner = CliRunner()
HEAVY = ("psycopg", "redis", "kubernetes", "numpy", "aiohttp", "faker", "h2")


heisen = partial(support.heisen, timeout=60, columns=100)


def test_help_lists_every_command_and_imports_no_driver():
    code = (
        "import sys\nsys.argv = ['heisen', '--help']\nfrom heisen.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    for command in (
        "run",
        "validate",
        "init",
        "report",
        "check",
        "verify",
        "predict",
        "stress",
        "fuzz",
        "isolate",
        "contain",
        "chaos",
    ):
        assert f"  {command} " in result.stdout
    assert "LOADED []" in result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_init_writes_a_pipeline_that_validates(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    validated = runner.invoke(app, ["validate", str(tmp_path / "pipeline.yaml"), "--json"])
    assert validated.exit_code == 0, validated.output
    assert json.loads(validated.stdout)["valid"] is True
    again = heisen("init", str(tmp_path))
    assert again.returncode == 2
    assert "--force" in again.stderr


def test_invalid_pipeline_exits_2_with_located_problems_and_no_traceback(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "apiVersion: heisen/v1\nname: x\nservices: {}\nscenario: {requests: {}, load: []}\nfoo: 1\n"
    )
    result = heisen("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "foo (line 5:6): unknown key 'foo'" in result.stderr
    assert "name at least one service" in result.stderr


def test_validate_json_lists_problems(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("name: x\n")
    result = heisen("validate", str(path), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert {p["path"] for p in report["problems"]} >= {"services", "scenario"}


def test_missing_pipeline_file_exits_2(tmp_path):
    result = heisen("run", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_phase_in_only_exits_2():
    result = heisen(
        "run", str(Path(__file__).parent / "counter" / "pipeline.yaml"), "--only", "strss"
    )
    assert result.returncode == 2
    assert "no phase named 'strss'" in result.stderr
