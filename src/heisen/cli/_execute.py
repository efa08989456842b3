"""Run phases from a command and map the outcome to an exit code."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from heisen.errors import (
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATION,
    UsageError,
    exit_code_for,
)
from heisen.manifest import MANIFEST_NAME, RunManifest, RunStatus
from heisen.schema import PhaseName


def execute(
    pipeline_path: Path,
    phases: Sequence[PhaseName],
    *,
    run_dir: Path | None,
    seed: int | None,
    as_json: bool,
    ci: bool,
    expect: str | None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    resume: bool = False,
    allow_inconclusive: bool = False,
) -> int:
    from heisen.cli._throttle import ThrottledProgress
    from heisen.console import make_console, write_json
    from heisen.pipeline import load_pipeline
    from heisen.report import TerminalView, finish_run
    from heisen.runner import Runner, default_run_dir

    if expect not in (None, "violation"):
        raise UsageError(f"--expect takes 'violation', not {expect!r}")
    plain = ci or bool(os.environ.get("CI"))
    loaded = load_pipeline(pipeline_path)
    manifest = None
    if run_dir is not None and (run_dir / MANIFEST_NAME).is_file():
        manifest = RunManifest.load(run_dir)
        if resume and manifest.run.pipeline_sha256 != loaded.sha256:
            raise UsageError(
                f"{pipeline_path} changed since the run in {run_dir} started; start a new run"
            )
    run_dir = run_dir or default_run_dir()
    from heisen.cli._writable import ensure_writable_dir

    ensure_writable_dir(run_dir)  # exit 3 naming the path, before anything starts
    console = make_console(stderr=True, plain=plain)  # progress and errors
    results = make_console(stderr=False, plain=plain)  # the summary, the ladder, report paths
    view = TerminalView(console, live=not plain)
    runner = Runner(
        loaded,
        run_dir=run_dir,
        phases=phases,
        seed=seed,
        sink=view if view.live else ThrottledProgress(view),
        options=options,
        manifest=manifest,
    )
    outcome = runner.run()
    finish_run(outcome.manifest, outcome.run_dir, console=results, ci=plain, quiet=as_json)
    if as_json:
        write_json(outcome.manifest.to_plain())
    if outcome.error is not None:
        if not as_json:
            from rich.markup import escape

            console.print(f"[bold red]error:[/] {escape(str(outcome.error))}")
        return exit_code_for(outcome.error)
    return exit_code_of(outcome.manifest.status, expect, allow_inconclusive)


def exit_code_of(status: RunStatus, expect: str | None, allow_inconclusive: bool) -> int:
    """0 passed, 1 violated, 4 inconclusive (0 when allowed); `--expect violation` swaps 0 and 1."""
    violated = status == RunStatus.FAILED
    if expect == "violation":
        return EXIT_OK if violated else EXIT_VIOLATION
    if violated:
        return EXIT_VIOLATION
    if status == RunStatus.INCONCLUSIVE and not allow_inconclusive:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def exit_with(code: int) -> None:
    raise typer.Exit(code)


__all__ = ["EXIT_USAGE", "execute", "exit_with"]
