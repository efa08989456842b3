"""Broken files a pipeline references: `heisen validate` refuses each one, located twice, quickly.

Each folder under `corpus_referenced/` holds a `pipeline.yaml` and the file
it references (an architecture, incidents, an OpenAPI document or a stub
mapping), broken in one way. The pipeline's header says what validate must
report:

    # expect: exit 2, path: <pipeline key>, line: <line of that key>
    # within: <referenced file>[, path: <path inside it>[, line: <line inside it>]]

Validate runs in-process; the case passes when it exits 2 without a
traceback, one problem sits at the pipeline key and line, and that
problem's message names the file and, where the header gives them, the path
and line inside it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import heisen.cli._commands  # noqa: F401  (registers the commands)
from heisen.cli import app, main

CORPUS = Path(__file__).parent / "corpus_referenced"
CASES = sorted(p for p in CORPUS.iterdir() if (p / "pipeline.yaml").is_file())
HEADER = re.compile(r"^# (expect|within): (.*)$", re.MULTILINE)
runner = CliRunner()


@dataclass(frozen=True)
class Expected:
    key: str
    key_line: int
    file: str
    inner_path: str | None
    inner_line: int | None


def expected(case: Path) -> Expected:
    fields: dict[str, dict[str, str]] = {}
    for kind, text in HEADER.findall((case / "pipeline.yaml").read_text()):
        parts = [part.strip() for part in text.split(",")]
        values = {"first": parts[0]}
        for part in parts:
            name, sep, value = part.partition(": ")
            if sep:
                values[name] = value
        fields[kind] = values
    expect, within = fields["expect"], fields["within"]
    assert expect["first"] == "exit 2"
    return Expected(
        key=expect["path"],
        key_line=int(expect["line"]),
        file=within["first"],
        inner_path=within.get("path"),
        inner_line=int(within["line"]) if "line" in within else None,
    )


def test_the_corpus_is_large_enough_and_covers_every_kind_of_file():
    assert len(CASES) >= 30
    files = {expected(case).file.rsplit(".", 1)[-1] for case in CASES}
    keys = {expected(case).key for case in CASES}
    assert {"yaml", "json"} <= files
    assert {
        "phases.predict.architecture",
        "phases.predict.incidents",
        "phases.fuzz.openapi",
        "phases.fuzz.operation",
        "dependencies.payments.stub",
    } <= keys


def validate_as_the_console_script(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """`heisen validate PIPELINE` through the real entry point, in-process: exit code, stderr."""
    monkeypatch.setattr("sys.argv", ["heisen", "validate", str(case / "pipeline.yaml")])
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("NO_COLOR", "1")
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    return code if isinstance(code, int) else 1, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_validate_refuses_the_broken_referenced_file(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    want = expected(case)
    started = time.monotonic()
    result = runner.invoke(app, ["validate", str(case / "pipeline.yaml"), "--json"])
    first = time.monotonic() - started
    code, stderr = validate_as_the_console_script(case, monkeypatch, capsys)
    second = time.monotonic() - started - first

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert code == 2, stderr
    assert "Traceback" not in stderr + result.output
    assert first < 2.0 and second < 2.0
    problems = json.loads(result.stdout)["problems"]
    at_key = [p for p in problems if p["path"] == want.key and p["line"] == want.key_line]
    assert at_key, f"nothing at {want.key} line {want.key_line}: {problems}"
    messages = [p["message"] for p in at_key]
    inside = want.file
    if want.inner_path is not None:
        inside += f": {want.inner_path}"
        if want.inner_line is not None:
            inside += f" (line {want.inner_line}:"
    assert any(message.startswith(inside) for message in messages), (inside, messages)
    assert f"{want.key} (line {want.key_line}:" in stderr
    assert inside in stderr
