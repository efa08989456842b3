"""Options several commands share, and how a command reads a pipeline and a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PipelineArg = Annotated[
    Path, typer.Argument(help="The pipeline file (pipeline.yaml).", show_default=False)
]
OptionalPipelineArg = Annotated[
    Path | None, typer.Argument(help="The pipeline file (pipeline.yaml).", show_default=False)
]
RunDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--run-dir",
        help="Run directory (default: .heisen/runs/<run-id>/); an existing one is continued.",
    ),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Run seed (default: the pipeline's, else random).")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout, and nothing else there.")
]
CiOpt = Annotated[
    bool,
    typer.Option(
        "--ci",
        help="Output for CI logs: plain ASCII, no colour, no live bar, lines never wrapped "
        "(also when $CI is set); the JUnit and Markdown reports are written either way.",
    ),
]
ExpectOpt = Annotated[
    str | None,
    typer.Option(
        "--expect",
        metavar="violation",
        help="'violation': exit 0 only if a violation was found (a regression test).",
    ),
]
AllowInconclusiveOpt = Annotated[
    bool,
    typer.Option(
        "--allow-inconclusive",
        help="Exit 0, not 4, when nothing was violated but a phase could not show its condition.",
    ),
]
TrialsOpt = Annotated[
    int | None,
    typer.Option(
        "--trials",
        min=1,
        max=10_000,
        help="Run exactly N trials (instead of the section's trials: or confidence:), as a replay does.",
    ),
]
