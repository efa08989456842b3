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

    from heisen._interrupts import interrupts_raise
    from heisen.console import make_console, write_json
    from heisen.oracle.pipeline_invariants import evaluate_probe, is_probe, run_setup
    from heisen.pipeline import load_pipeline
    from heisen.runner import default_run_dir, new_run_id
    from heisen.stress._load_facts import load_variables
    from heisen.system import SystemHandle

    loaded = load_pipeline(pipeline)
    run_dir = run_dir or default_run_dir()
    console = make_console(stderr=True)
    system = SystemHandle(
        loaded,
        run_dir,
        seed=loaded.pipeline.seed or 0,
        run_id=new_run_id(),
        log=lambda message: console.print(f"  [dim]·[/] {escape(message)}"),
    )
    verdicts = []
    # No load ran: `load.<request>.*` are all zero, as before a trial's first request.
    no_load = load_variables([], {}, list(loaded.pipeline.scenario.requests))
    with interrupts_raise():
        try:
            system.start()
            run_setup(loaded.pipeline, system)
            for invariant in loaded.pipeline.invariants:
                if is_probe(invariant):
                    verdicts.append(
                        evaluate_probe(loaded.pipeline, system, invariant, {"seed": 0}, no_load)
                    )
                else:
                    console.print(
                        f"  [dim]{invariant.name}: checked from a trial's load, not here[/]"
                    )
        finally:
            system.stop()
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
