"""`heisen report RUN_DIR`: the summary and the report files, again, from a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heisen.cli._app import app
from heisen.cli._options import JsonOpt


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding manifest.yaml.")],
    as_json: JsonOpt = False,
) -> None:
    """Print a run's summary and (re)write its HTML, JUnit and Markdown reports."""
    from heisen.console import make_console, write_json
    from heisen.manifest import RunManifest
    from heisen.report import print_summary, write_reports

    manifest = RunManifest.load(run_dir)
    reports = write_reports(manifest, run_dir)
    if as_json:
        write_json({"manifest": manifest.to_plain(), "reports": reports})
    else:
        print_summary(manifest, run_dir, console=make_console(stderr=False), reports=reports)
    raise typer.Exit(0)
