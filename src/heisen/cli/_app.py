"""The root Typer app and what every command shares."""

from __future__ import annotations

import os
from typing import Any

import typer

from heisen import __version__

# -h as well as --help, on the root and every command (subcommands inherit it).
HELP_OPTIONS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="heisen",
    help="Find race conditions before production does: predict, stress, fuzz, isolate, contain, chaos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=HELP_OPTIONS,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"heisen {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Print the traceback of a crash of heisen itself (HEISEN_DEBUG=1)."
    ),
) -> None:
    """heisen: find race conditions before production does."""
    if debug:
        os.environ["HEISEN_DEBUG"] = "1"


def error_console() -> Any:
    from heisen.console import make_console

    return make_console(stderr=True)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)
