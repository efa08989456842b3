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


def _flat(text: str) -> str:
    """The output with its wrapping undone: one space wherever the terminal broke a line."""
    return " ".join(text.split())


def test_an_invariant_that_could_not_be_evaluated_names_trial_fault_and_message(
    error_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _summary(error_run, monkeypatch, capsys)
    assert "ladder: stress error\n" in out and "stock-nonnegative: stress error\n" in out
    assert "error in stress: NotEvaluated\n" in out  # the message is said once, by the trial line
    flat = _flat(out)
    assert (
        "trial 3: no-oversell could not be evaluated (pipeline error): unknown name 'valu' in "
        "expect 'valu <= capacity' (the probe gave: sold, capacity)"
    ) in flat
    assert "→ the pipeline is at fault (exit 2)" in flat
    assert "run error: /runs/r1/manifest.yaml" in out
    stress_row = next(line for line in out.splitlines() if line.startswith("stress "))
    assert "0%" not in stress_row


def test_environment_errors_list_every_trial(
    environment_error_run: RunManifest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flat = _flat(_summary(environment_error_run, monkeypatch, capsys))
    assert "ladder: stress 0% → chaos error" in flat
    assert "error in chaos: NotEvaluated: chaos: holds-expire could not be evaluated in 2" in flat
    for trial in (4, 5):
        assert (
            f"trial {trial}: holds-expire could not be evaluated (environment error): redis "
            "127.0.0.1:6391: connection refused <Error 111>"
        ) in flat
    assert "→ the environment is at fault (exit 3)" in flat


def test_inconclusive_phase_says_why_and_is_not_a_zero_rate(
    inconclusive_run: RunManifest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _summary(inconclusive_run, monkeypatch, capsys)
    assert "ladder: stress 0% → contain inconclusive\n" in out
    assert "  no-oversell: stress 0% → contain inconclusive\n" in out
    assert (
        "inconclusive in contain: 0 throttled periods in 6 trials: the CPU limit never acted"
        in _flat(out)
    )
    contain_row = next(line for line in out.splitlines() if line.startswith("contain "))
    assert "inconclusive" in contain_row and "0%" not in contain_row
    assert "run inconclusive: /runs/r1/manifest.yaml" in out


def test_bounds_in_words(
    bound_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _summary(bound_run, monkeypatch, capsys)
    flat = _flat(out)
    assert "bounds:\n" in out
    assert (
        "stress: violation rate below 1% with 95% confidence (0 violations in 299 trials); "
        "24.1 trials/s"
    ) in flat
    assert (
        "isolate: not proven: 120 trials ran in the 5m budget; the rate is below 2.5% at 95% "
        "confidence (needed 299 trials without a violation for 1%); 0.4 trials/s"
    ) in flat
    assert (
        "contain: not proven: 150 trials ran in 61.5s; the rate is below 3.1% at 99% "
        "confidence (needed 919 trials without a violation for 0.5%)"
    ) in flat


def test_evidence_under_each_finding_as_name_value_pairs(
    failed_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _summary(failed_run, monkeypatch, capsys)
    head = out.index("✗ stress: no-oversell")
    evidence = out.index("    evidence: sold=101, capacity=100\n")
    replay = out.index("    replay: heisen stress examples/ticketing/pipeline.yaml --seed 7")
    assert head < evidence < replay
    assert "evidence: sold=102, capacity=100" in out
    assert 'evidence: body.sold=109, load.checkout.ok=100, body.event="<b>gala</b> [/]"' in _flat(
        out
    )
    assert "evidence: timeline" not in out and "operations=" not in out  # history shown apart


def test_live_view_says_trial_errors_and_bound_as_a_phase_ends(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from heisen import events as ev
    from heisen.report._terminal import TerminalView

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    view = TerminalView(make_console(), live=False)
    error = {"trial": 3, "invariant": "no-oversell", "kind": "pipeline", "message": "no 'valu'"}
    view(ev.PhaseFinished("stress", "error", "error: no-oversell", 3.4, {"trial_errors": [error]}))
    bound = {"rate_below": 0.01, "level": 0.95, "trials": 299, "upper": 0.00998, "proven": True}
    view(
        ev.PhaseFinished(
            "isolate", "passed", "0/299", 12.0, {"bound": bound, "trials": 299, "violations": 0}
        )
    )
    out = capsys.readouterr().err
    assert "  error in 3.4s: error: no-oversell\n" in out
    assert "  ✗ trial 3: no-oversell could not be evaluated (pipeline error): no 'valu'\n" in out
    assert (
        "  bound: violation rate below 1% with 95% confidence (0 violations in 299 trials)\n" in out
    )
