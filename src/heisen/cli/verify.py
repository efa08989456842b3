"""`heisen verify HISTORY --model M`: check any history file for consistency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heisen.cli._app import app
from heisen.cli._options import JsonOpt

MODELS = ("register", "cas-register", "counter", "set")


@app.command("verify")
def verify_command(
    history: Annotated[
        Path, typer.Argument(help="A history.jsonl file (invoke/ok/fail/info operations).")
    ],
    model: Annotated[str, typer.Option("--model", help="register, cas-register, counter or set.")],
    budget: Annotated[
        float, typer.Option("--budget", help="Seconds the search may take before 'unknown'.")
    ] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Exit 0 when the history is consistent with the model, 1 on a violation, 2 on bad input."""
    from rich.markup import escape

    from heisen.console import make_console, write_json
    from heisen.errors import UsageError
    from heisen.oracle.checkers import check, render_timeline
    from heisen.oracle.history import read_history

    if model not in MODELS:
        raise UsageError(f"--model takes one of {', '.join(MODELS)}, not {model!r}")
    if not history.is_file():
        raise UsageError(f"no such history file: {history}")
    operations = read_history(history)
    result = check(operations, model, time_budget_s=budget)
    if as_json:
        write_json(result.to_dict())
    else:
        console = make_console(stderr=False)
        verdict = {True: "[green]valid[/]", False: "[red]violation[/]", None: "[yellow]unknown[/]"}[
            result.valid
        ]
        console.print(f"{verdict}: {history} against {model} ({len(operations)} operations)")
        for violation in result.violations[:5]:
            console.print(
                f"\n[bold]{escape(violation.kind)}[/] key={violation.key}: {escape(violation.message)}"
            )
            console.print(escape(render_timeline(violation.operations)))
    raise typer.Exit(0 if result.valid else 1 if result.valid is False else 3)
