"""`heisen schema`: the pipeline's JSON Schema (for editors and CI), or its Markdown reference."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from heisen.cli._app import app


@app.command("schema")
def schema_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON Schema (the default).")
    ] = True,
    as_markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the reference instead: docs/pipeline.md."),
    ] = False,
) -> None:
    """Print pipeline.yaml's JSON Schema: every key, its type, meaning and an example."""
    import json

    from heisen.schema.reference import json_schema, markdown

    # Neither goes through the redacting writer: the schema holds no secrets, and key names
    # such as `key` (a client certificate's) would be masked along with their descriptions.
    if as_markdown:
        sys.stdout.write(markdown())
    else:
        sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")
    raise typer.Exit(0)
