"""What people and CI read: the terminal summary, HTML, JUnit XML and Markdown."""

from __future__ import annotations

import importlib
from typing import Any

from heisen.report._summary import print_summary

__all__ = ["finish_run", "print_summary", "write_reports"]


def write_reports(manifest: Any, run_dir: Any) -> list[str]:
    """Write every report format this build has; the paths written, relative to the run dir."""
    manifest = redacted(manifest)
    written = []
    for module_name in ("heisen.report.html", "heisen.report.junit", "heisen.report.markdown"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        written.append(module.write(manifest, run_dir))
    return [str(path) for path in written]


def redacted(manifest: Any) -> Any:
    """A copy of a RunManifest with its secrets masked (`to_plain` redacts), for the reports."""
    if not hasattr(manifest, "to_plain"):
        return manifest
    return type(manifest).model_validate(manifest.to_plain())


def finish_run(outcome: Any, *, console: Any, ci: bool, quiet: bool) -> None:
    reports = write_reports(outcome.manifest, outcome.run_dir)
    if not quiet:
        print_summary(outcome.manifest, outcome.run_dir, console=console, reports=reports)
