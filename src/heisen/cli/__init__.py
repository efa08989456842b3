"""The heisen command line: one module per command; the only place that decides exit codes."""

from __future__ import annotations

import sys

import typer

from heisen import __version__
from heisen.cli import _app
from heisen.errors import EXIT_INTERRUPTED, HeisenError

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
        raise


def version_text() -> str:
    return f"heisen {__version__}"
