"""`heisen verify HISTORY --model M`: check any history file for consistency."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heisen.cli._app import app
from heisen.cli._options import JsonOpt

if TYPE_CHECKING:
    from heisen.oracle.checkers import RateLimit

MODELS = ("register", "cas-register", "counter", "set", "rate")


@app.command("verify")
def verify_command(
    history: Annotated[
        Path, typer.Argument(help="A history.jsonl file (invoke/ok/fail/info operations).")
    ],
    model: Annotated[
        str, typer.Option("--model", help="register, cas-register, counter, set or rate.")
    ],
    budget: Annotated[
        float, typer.Option("--budget", help="CPU seconds the search may take before 'unknown'.")
    ] = 10.0,
    as_json: JsonOpt = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="rate: at most this many ok operations in any --window."),
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="rate: the window's length (1s, 500ms).")
    ] = None,
    per: Annotated[
        str, typer.Option("--per", help="rate: key (default), or replica: a limit per replica.")
    ] = "key",
    f: Annotated[
        str | None,
        typer.Option("--f", help="rate: the operation counted (default: the history's only f)."),
    ] = None,
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
    result = check(operations, _model(model, limit, window, per, f), time_budget_s=budget)
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


def _model(
    name: str, limit: int | None, window: str | None, per: str, f: str | None
) -> str | RateLimit:
    """The model ``check`` takes: its name, or the rate model with its parameters."""
    from heisen._units import parse_duration
    from heisen.errors import UsageError
    from heisen.oracle.checkers import Per, RateLimit

    given = [o for o, v in (("--limit", limit), ("--window", window), ("--f", f)) if v is not None]
    given += ["--per"] if per != "key" else []
    if name != "rate":
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{', '.join(given)} only {verb} to --model rate, not {name}")
        return name
    if limit is None or window is None:
        raise UsageError("--model rate needs --limit N and --window DURATION (e.g. 1s)")
    if per not in ("key", "replica"):
        raise UsageError(f"--per takes key or replica, not {per!r}")
    try:
        seconds = parse_duration(window)
    except ValueError as exc:
        raise UsageError(f"--window: {exc}") from None
    return RateLimit(limit=limit, window_s=seconds, f=f, per=Per(per))
