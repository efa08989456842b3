"""`heisen init [DIR]`: a commented starter pipeline for your own HTTP service, and its schema.

The pipeline's first line names `heisen.schema.json`, written beside it, so an
editor with the YAML language server completes and checks keys offline.
"""

from __future__ import annotations

import json
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
    """Write a commented starter pipeline.yaml, and heisen.schema.json for editors."""
    from heisen.console import make_console
    from heisen.schema.reference import SCHEMA_FILE, json_schema

    target = directory / "pipeline.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    schema = directory / SCHEMA_FILE
    # always this heisen's schema: it is generated, and an older one would flag new keys
    schema.write_text(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    make_console(stderr=False).print(
        f"wrote {target} and {schema} (editors read it: see the pipeline's first line)\n"
        f"next: edit services.app.command, then `heisen validate {target}`"
    )
    raise typer.Exit(0)
