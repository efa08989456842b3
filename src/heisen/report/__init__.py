"""What people and CI read: the terminal summary, HTML, JUnit XML and Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heisen.manifest import RunManifest
from heisen.report._summary import print_summary
from heisen.report._terminal import TerminalView

__all__ = ["TerminalView", "finish_run", "print_summary", "write_reports"]


def write_reports(manifest: RunManifest, run_dir: Path) -> list[str]:
    """Write the HTML, JUnit and Markdown reports; the paths written, relative to the run dir.

    All three are part of heisen and need no optional dependency: a missing one
    is a broken installation and fails like any other (heisen's own error, exit
    3), never by leaving its report out without a word.
    """
    from heisen.report import html, junit, markdown

    manifest = redacted(manifest)
    return [str(write(manifest, run_dir)) for write in (html.write, junit.write, markdown.write)]


def redacted(manifest: RunManifest) -> RunManifest:
    """A copy of a RunManifest with its secrets masked (`to_plain` redacts), for the reports."""
    return RunManifest.model_validate(manifest.to_plain())


def finish_run(
    manifest: RunManifest, run_dir: Path, *, console: Any, ci: bool, quiet: bool
) -> None:
    """Write the reports of a run that just ended and, unless quiet, print its summary."""
    reports = write_reports(manifest, run_dir)
    if not quiet:
        print_summary(manifest, run_dir, console=console, reports=reports)
