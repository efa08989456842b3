"""`heisen run PIPELINE`: every phase in order over one run."""

from __future__ import annotations

from typing import Annotated

import typer

from heisen.cli._app import app
from heisen.cli._execute import execute
from heisen.cli._options import (
    AllowInconclusiveOpt,
    CiOpt,
    ExpectOpt,
    JsonOpt,
    OptionalPipelineArg,
    RunDirOpt,
    SeedOpt,
)
from heisen.errors import UsageError

PHASES = "predict, stress, fuzz, isolate, contain, chaos"
OnlyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        metavar="PHASE",
        help=f"Run only this phase ({PHASES}); repeat for more, e.g. --only stress --only fuzz.",
    ),
]
SkipOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--skip",
        metavar="PHASE",
        help="Run every phase but this one; repeat for more, e.g. --skip contain --skip chaos.",
    ),
]


@app.command("run")
def run_command(
    pipeline: OptionalPipelineArg = None,
    run_dir: RunDirOpt = None,
    seed: SeedOpt = None,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    start_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="PHASE",
            help="Skip the phases before this one, e.g. --from isolate runs isolate, contain, chaos.",
        ),
    ] = None,
    resume_dir: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_DIR",
            help="Continue the interrupted or failed run in RUN_DIR, skipping the phases it passed.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    ci: CiOpt = False,
    expect: ExpectOpt = None,
    allow_inconclusive: AllowInconclusiveOpt = False,
) -> None:
    """Run the pipeline's phases in order: predict, stress, fuzz, isolate, contain, chaos."""
    from pathlib import Path

    from heisen.manifest import PhaseStatus, RunManifest
    from heisen.runner import select_phases

    phases = select_phases(only=only or (), skip=skip or (), start_from=start_from)
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        manifest = RunManifest.load(run_dir)
        pipeline = pipeline or Path(manifest.run.pipeline)
        done = {
            name
            for name, record in manifest.phases.items()
            if record.status in (PhaseStatus.PASSED, PhaseStatus.SKIPPED)
        }
        phases = [name for name in phases if name not in done]
        seed = manifest.run.seed
    if pipeline is None:
        raise UsageError("name a pipeline file (heisen run pipeline.yaml) or --resume RUN_DIR")
    code = execute(
        pipeline,
        phases,
        run_dir=run_dir,
        seed=seed,
        as_json=as_json,
        ci=ci,
        expect=expect,
        resume=resume_dir is not None,
        allow_inconclusive=allow_inconclusive,
    )
    raise typer.Exit(code)
