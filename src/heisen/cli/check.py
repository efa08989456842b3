"""`heisen check PIPELINE`: start the system, run setup and every invariant once, stop."""

from __future__ import annotations

import typer

from heisen.cli._app import app
from heisen.cli._options import JsonOpt, PipelineArg, RunDirOpt
from heisen.errors import EXIT_ENVIRONMENT, EXIT_OK, EXIT_USAGE, EXIT_VIOLATION


@app.command("check")
def check_command(
    pipeline: PipelineArg, run_dir: RunDirOpt = None, as_json: JsonOpt = False
) -> None:
    """Start the system, run the setup and every invariant once, print each value and verdict, stop."""
    from rich.markup import escape

    from heisen.cli._throttle import ThrottledProgress
    from heisen.console import make_console, write_json
    from heisen.pipeline import load_pipeline
    from heisen.report import TerminalView
    from heisen.runner import Runner, default_run_dir

    loaded = load_pipeline(pipeline)
    console = make_console(stderr=True)
    runner = Runner(
        loaded,
        run_dir=run_dir or default_run_dir(),
        phases=[],
        seed=loaded.pipeline.seed or 0,
        sink=ThrottledProgress(TerminalView(console, live=False)),
    )
    outcome = runner.check()
    for name in outcome.from_load:
        console.print(f"  [dim]{escape(name)}: checked from a trial's load, not here[/]")
    verdicts = outcome.verdicts
    if as_json:
        write_json({"invariants": [v.to_dict() for v in verdicts]})
    else:
        for verdict in verdicts:
            mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[yellow]?[/]"}[verdict.held]
            make_console(stderr=False).print(
                f"{mark} {escape(verdict.name)}: {escape(verdict.message)}"
            )
    faults = {v.fault for v in verdicts if v.held is None}
    if "pipeline" in faults:
        raise typer.Exit(EXIT_USAGE)
    if faults:
        raise typer.Exit(EXIT_ENVIRONMENT)
    raise typer.Exit(EXIT_VIOLATION if any(v.held is False for v in verdicts) else EXIT_OK)
