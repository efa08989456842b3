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
