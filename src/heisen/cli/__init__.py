"""The heisen command line: one module per command; the only place that decides exit codes."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from heisen import __version__
from heisen.cli import _app
from heisen.errors import EXIT_ENVIRONMENT, EXIT_INTERRUPTED, HeisenError

app = _app.app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry: run the app, turn heisen's errors into messages and exit codes."""
    from heisen.cli import _commands  # noqa: F401  (registers the commands)

    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except HeisenError as exc:
        _app.error_console().print(f"[bold red]error:[/] {_app.escape(str(exc))}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _app.error_console().print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(
            exc, "exit_code"
        ):  # the command-line parser's usage errors
            exc.show()
            sys.exit(2)
        _crashed(exc)


DEBUG_VARIABLE = "HEISEN_DEBUG"


def _crashed(exc: Exception) -> NoReturn:
    """heisen's own bug: exit 3 (never 1, "the race is real"), the traceback in a log file."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    with tempfile.NamedTemporaryFile(
        "w", prefix="heisen-crash-", suffix=".log", delete=False, encoding="utf-8"
    ) as log:
        log.write(text)
    console = _app.error_console()
    console.print(
        f"[bold red]heisen failed:[/] {_app.escape(f'{type(exc).__name__}: {exc}')}\n"
        f"  this is a bug in heisen, not a finding; the traceback is in {log.name}"
    )
    if os.environ.get(DEBUG_VARIABLE):
        sys.stderr.write(text)
    sys.exit(EXIT_ENVIRONMENT)


def version_text() -> str:
    return f"heisen {__version__}"
