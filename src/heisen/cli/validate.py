"""`heisen validate PIPELINE`: every problem at once, nothing started."""

from __future__ import annotations

import typer

from heisen.cli._app import app
from heisen.cli._options import JsonOpt, PipelineArg


@app.command("validate")
def validate_command(pipeline: PipelineArg, as_json: JsonOpt = False) -> None:
    """Check a pipeline (schema, files, templates, references) without starting anything."""
    from heisen.console import make_console, write_json
    from heisen.errors import PipelineError
    from heisen.pipeline import load_pipeline
    from heisen.schema import PhaseName

    try:
        loaded = load_pipeline(pipeline)
    except PipelineError as exc:
        if as_json:
            write_json(
                {
                    "valid": False,
                    "problems": [
                        {"path": p.path, "line": p.line, "column": p.column, "message": p.message}
                        for p in exc.problems
                    ],
                }
            )
            raise typer.Exit(2) from None
        raise
    if as_json:
        write_json({"valid": True, "pipeline": str(loaded.path), "sha256": loaded.sha256})
    else:
        p = loaded.pipeline
        make_console(stderr=False).print(
            f"[green]valid[/]: {pipeline} — {len(p.services)} service(s), {len(p.dependencies)} dependenc"
            f"{'y' if len(p.dependencies) == 1 else 'ies'}, {len(p.invariants)} invariant(s), phases: "
            + ", ".join(name for name in PhaseName if p.phases.section(name) is not None)
        )
    raise typer.Exit(0)
