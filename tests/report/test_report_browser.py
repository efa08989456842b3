"""The HTML report in a real headless Chromium: it renders, the ladder is there, no console errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from heisen.manifest import RunManifest
from heisen.report import html

pytestmark = pytest.mark.slow

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium(binary: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    command = [
        str(binary),
        *FLAGS,
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


CONSOLE_ERRORS = ("Uncaught", "ERROR:CONSOLE", "Content Security Policy", "Refused to")


def test_console_error_scan_sees_a_broken_page(chromium: Path, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>notDefined()</script>", encoding="utf-8")
    result = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert any(marker in result.stderr for marker in CONSOLE_ERRORS), result.stderr[-2000:]


def test_report_renders_in_chromium(
    chromium: Path, failed_run: RunManifest, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    page = run_dir / html.write(failed_run, run_dir)
    dom = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert (
        'id="ladder"' in dom.stdout
        and "Reproduction ladder: violation rate per phase" in dom.stdout
    )
    assert "Copy</button>" in dom.stdout  # the inline script ran: it unhides the copy buttons
    assert "<img" not in dom.stdout
    for marker in CONSOLE_ERRORS:
        assert marker not in dom.stderr, dom.stderr[-2000:]
    screenshot = tmp_path / "report.png"
    shot = _chromium(
        chromium, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000", page.as_uri()
    )
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-2000:]
    print(f"screenshot: {screenshot}")


def test_the_targets_ladder_charts_render_in_chromium(
    chromium: Path, target_run: RunManifest, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    page = run_dir / html.write(target_run, run_dir)
    dom = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    for title in (
        "Reproduction ladder: violation rate per phase",
        "Per-operation rate per phase",
        "Smallest reproducing burst per phase",
        "predict calibrated on no-oversell: predicted vs observed violation rate per load",
    ):
        assert f"<title>{title}" in dom.stdout, title
    for marker in CONSOLE_ERRORS:
        assert marker not in dom.stderr, dom.stderr[-2000:]


BAD = (0xC6, 0x28, 0x28)  # --bad in report.css, light scheme
WARN = (0xB2, 0x6A, 0x00)  # --warn


def _header_shot(chromium: Path, tmp_path: Path, manifest: RunManifest, name: str) -> Path:
    """A screenshot of the page's first 80 pixels: the title and its status badge."""
    run_dir = tmp_path / name
    page = run_dir / html.write(manifest, run_dir)
    shot = run_dir / "header.png"
    result = _chromium(
        chromium, run_dir, f"--screenshot={shot}", "--window-size=1000,80", page.as_uri()
    )
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    return shot


def test_error_and_inconclusive_badges_look_different_from_failed(
    chromium: Path,
    tmp_path: Path,
    error_run: RunManifest,
    failed_run: RunManifest,
    inconclusive_run: RunManifest,
) -> None:
    from report_png import count

    error = _header_shot(chromium, tmp_path, error_run, "error")
    failed = _header_shot(chromium, tmp_path, failed_run, "failed")
    inconclusive = _header_shot(chromium, tmp_path, inconclusive_run, "inconclusive")
    red = {name: count(shot, BAD) for name, shot in (("error", error), ("failed", failed))}
    print(f"red pixels in the header: {red}")
    assert red["failed"] > 50  # an outlined red badge
    assert red["error"] > 3 * red["failed"]  # a filled one: error stands out from failed
    assert count(inconclusive, WARN) > 100 and count(inconclusive, BAD) == 0
