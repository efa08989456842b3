"""`heisen isolate PIPELINE` runs the isolate phase; `heisen isolate serve` runs the stub server alone."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from heisen.cli._app import HELP_OPTIONS, app
from heisen.cli._options import (
    AllowInconclusiveOpt,
    CiOpt,
    ExpectOpt,
    JsonOpt,
    PipelineArg,
    RunDirOpt,
    SeedOpt,
    TrialsOpt,
)
from heisen.schema import PhaseName

if TYPE_CHECKING:
    from typer._click import Context  # the command-line parser's context, as TyperGroup takes it

PHASE_COMMAND = "run"


class _PipelineOrCommand(TyperGroup):
    """A group whose default command is the phase: `isolate PIPELINE` reads as `isolate run PIPELINE`."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [PHASE_COMMAND, *args]
        return super().parse_args(ctx, args)


isolate_app = typer.Typer(
    cls=_PipelineOrCommand,
    name="isolate",
    help="Widen the race window with latency-injecting stubs and TCP proxy toxics.\n\n"
    "heisen isolate PIPELINE runs the phase (same as heisen isolate run PIPELINE); "
    "heisen isolate serve runs the stub server alone.",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    rich_markup_mode=None,
)
app.add_typer(isolate_app)


@isolate_app.command(PHASE_COMMAND)
def isolate_run_command(
    pipeline: PipelineArg,
    trials: TrialsOpt = None,
    run_dir: RunDirOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
    ci: CiOpt = False,
    expect: ExpectOpt = None,
    allow_inconclusive: AllowInconclusiveOpt = False,
) -> None:
    """Run the isolate phase of PIPELINE (the default: heisen isolate PIPELINE)."""
    from heisen.cli.phases import run_phase

    run_phase(
        PhaseName.ISOLATE,
        pipeline,
        run_dir,
        seed,
        as_json,
        ci,
        expect,
        {"trials": trials} if trials else None,
        allow_inconclusive=allow_inconclusive,
    )


@isolate_app.command("serve")
def isolate_serve_command(
    root: Annotated[
        Path | None,
        typer.Option(help="The WireMock root to serve (mappings/, __files/); none: no mappings."),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            help="The port to listen on; 0 picks a free one (the address is printed).",
            min=0,
            max=65535,
        ),
    ] = 8080,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    journal_limit: Annotated[
        int, typer.Option(help="Requests kept in the /__admin journal (0: none).")
    ] = 10_000,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            metavar="HOST",
            help="A host a proxyBaseUrl may reach besides loopback (repeatable).",
        ),
    ] = None,
    seed: SeedOpt = None,
) -> None:
    """Serve WireMock-compatible stubs alone until Ctrl-C; print the address and each request."""
    from heisen.system.stub import serve

    _log_to_stderr("heisen.system.stub")
    serve(
        root,
        host=host,
        port=port,
        seed=seed or 0,
        journal_limit=journal_limit,
        verbose=True,
        allow_hosts=allow_host or [],
    )
    raise typer.Exit(0)


def _log_to_stderr(name: str) -> None:
    """The stub server's log lines ("listening on http://HOST:PORT", one per request) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
