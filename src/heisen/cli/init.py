"""`heisen init [DIR]`: a commented starter pipeline for your own HTTP service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heisen.cli._app import app
from heisen.errors import UsageError

TEMPLATE = Path(__file__).parent / "templates" / "pipeline.yaml"


@app.command("init")
def init_command(
    directory: Annotated[Path, typer.Argument(help="Where to write pipeline.yaml.")] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing pipeline.yaml.")
    ] = False,
) -> None:
    """Write a commented starter pipeline.yaml for your own HTTP service."""
    from heisen.console import make_console

    target = directory / "pipeline.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    make_console(stderr=False).print(
        f"wrote {target}\nnext: edit services.app.command, then `heisen validate {target}`"
    )
    raise typer.Exit(0)
