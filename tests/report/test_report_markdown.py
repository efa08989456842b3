from __future__ import annotations

from pathlib import Path

import pytest

from heisen.manifest import RunManifest
from heisen.report import markdown


def test_ladder_table_and_replay_blocks(failed_run: RunManifest) -> None:
    text = markdown.render(failed_run)
    assert "| contain | failed | 9.0% | 7.4% \N{EN DASH} 11% | 1000 |" in text
    assert "```sh\nheisen stress examples/ticketing/pipeline.yaml --seed 7\n```" in text
    assert "<script>" not in text.replace('```json\n{"seat": "<script>"}', "")
    assert "&lt;script&gt;alert" in text


def test_code_fences_outgrow_backticks_in_payloads() -> None:
    block = markdown.code_block("a ```` b")
    assert block.startswith("`````\n") and block.endswith("\n`````")


def test_inline_text_cannot_break_a_table_row() -> None:
    assert markdown.text("a | b\nc <i>") == "a \\| b c &lt;i&gt;"


@pytest.mark.parametrize("initial", ["", "# earlier step\n"])
def test_appended_to_github_step_summary(
    failed_run: RunManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, initial: str
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text(initial, encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run_dir = tmp_path / "run"
    assert markdown.write(failed_run, run_dir) == Path("summary.md")
    written = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert summary.read_text(encoding="utf-8") == initial + "\n" + written


def test_without_step_summary_only_the_run_dir(
    passed_run: RunManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    markdown.write(passed_run, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]
    assert "No invariant was violated." in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_errors_say_trial_invariant_fault_and_message(error_run: RunManifest) -> None:
    text = markdown.render(error_run)
    assert text.startswith("## heisen run error-run: **ERROR**")
    errors = text.index("### Errors")
    assert errors < text.index("**Reproduction ladder:** stress error")
    assert "**stress**: NotEvaluated\n" in text
    assert (
        "- trial 3: no-oversell could not be evaluated (pipeline error): unknown name 'valu' "
        "in expect 'valu &lt;= capacity' (the probe gave: sold, capacity)\n"
    ) in text
    assert "_the pipeline is at fault (exit 2)_" in text
    assert "| stress | error | — |  | 2 | trial 3: no-oversell could not be evaluated" in text


def test_environment_errors_list_each_trial(environment_error_run: RunManifest) -> None:
    text = markdown.render(environment_error_run)
    for trial in (4, 5):
        assert (
            f"- trial {trial}: holds-expire could not be evaluated (environment error): "
            "redis 127.0.0.1:6391: connection refused &lt;Error 111&gt;\n"
        ) in text
    assert "_the environment is at fault (exit 3)_" in text


def test_inconclusive_phase_says_why_and_has_no_rate(inconclusive_run: RunManifest) -> None:
    text = markdown.render(inconclusive_run)
    assert text.startswith("## heisen run inconclusive-run: **INCONCLUSIVE**")
    assert "- **contain**: 0 throttled periods in 6 trials: the CPU limit never acted\n" in text
    assert "**Reproduction ladder:** stress 0% → contain inconclusive" in text
    assert "| contain | inconclusive | — |  | 6 | 0 throttled periods in 6 trials" in text
    assert "| contain | inconclusive | 30.2s | inconclusive: 0 throttled periods" in text


def test_bounds_in_words(bound_run: RunManifest) -> None:
    text = markdown.render(bound_run)
    assert "### Confidence bounds" in text
    assert (
        "- **stress**: violation rate below 1% with 95% confidence (0 violations in 299 "
        "trials); 24.1 trials/s\n"
    ) in text
    assert (
        "- **isolate**: not proven: 120 trials ran in the 5m budget; the rate is below 2.5% at "
        "95% confidence (needed 299 trials without a violation for 1%); 0.4 trials/s\n"
    ) in text


def test_evidence_under_each_finding(failed_run: RunManifest) -> None:
    text = markdown.render(failed_run)
    finding = text.index("**stress: no-oversell**")
    evidence = text.index("Evidence: sold=101, capacity=100\n")
    assert finding < evidence < text.index("```sh\nheisen stress", finding)
    assert (
        'Evidence: body.sold=109, load.checkout.ok=100, body.event="&lt;b&gt;gala&lt;/b&gt; \\[/\\]"'
        in text
    )


def test_fuzz_payloads_are_json_once(chaos_fuzz_run: RunManifest) -> None:
    text = markdown.render(chaos_fuzz_run)
    fuzz = text.split("### Fuzz failures (4)")[1]
    assert '```json\n{"qty":2147483648}\n```' in fuzz
    assert '"{\\"' not in fuzz  # no JSON string holding JSON
    assert "**fuzz: qty: 2147483648 (int32 max + 1) → 500** (and 1 more cases)" in fuzz


def test_a_payload_that_is_not_json_is_shown_as_text() -> None:
    assert markdown.payload_block('{"user":"AAAA…\n  (65555 characters)') == (
        '```\n{"user":"AAAA…\n  (65555 characters)\n```'
    )
    assert markdown.payload_block({"qty": 1}) == '```json\n{"qty": 1}\n```'
