from __future__ import annotations

from pathlib import Path

import pytest

from heisen.console import make_console
from heisen.manifest import RunManifest
from heisen.report import print_summary


def _summary(
    manifest: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    print_summary(
        manifest, Path("/runs/r1"), console=make_console(), reports=["report.html", "junit.xml"]
    )
    return capsys.readouterr().err


def test_fits_80_columns_except_whole_replay_commands(
    any_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _summary(any_run, monkeypatch, capsys)
    assert "\x1b" not in out
    wide = [line for line in out.splitlines() if len(line.rstrip()) > 80]
    assert all(line.startswith("    replay: ") for line in wide), wide


def test_findings_replays_and_reports(
    failed_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _summary(failed_run, monkeypatch, capsys)
    assert "ladder: predict 0.30% → stress 0.30% → isolate 1.2% → contain 9.0% →" in out
    assert (
        "    replay: heisen fuzz examples/ticketing/pipeline.yaml --seed 7 --case fuzz-0001\n"
        in out
    )
    assert "p3 |                   [r 1───] |" in out
    assert "findings (5)" in out and "fuzz: 2 failing case(s): fuzz-0001, fuzz-0002" in out
    assert "  report: /runs/r1/report.html" in out


def test_errors_are_shown_without_terminal_escapes(
    partial_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _summary(partial_run, monkeypatch, capsys)
    assert "error in stress: SystemUnavailable" in out
    assert "\\x1b[31m<oops>" in out
    assert "ladder: stress error\n" in out  # an errored step is shown as error, not left out
