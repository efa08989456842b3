"""The HTML report in a real headless Chromium: it renders, the ladder is there, no console errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from heisen.manifest import RunManifest
from heisen.report import html

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
