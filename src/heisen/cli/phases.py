"""One command per phase: `heisen stress PIPELINE` runs that phase alone on a new or given run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from heisen.cli._app import app
from heisen.cli._execute import execute
from heisen.cli._options import (
    AllowInconclusiveOpt,
    CiOpt,
    ExpectOpt,
    JsonOpt,
    OptionalPipelineArg,
    PipelineArg,
    RunDirOpt,
    SeedOpt,
    TrialsOpt,
)
from heisen.cli._tls_flags import AllowHostOpt, CacertOpt, CertOpt, InsecureOpt, KeyOpt
from heisen.errors import UsageError
from heisen.schema import PhaseName


def _check_url(url: str) -> None:
    """Refuse a --url that cannot be connected to: a scheme other than http(s), no host, a bad port."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--url {url!r}: {exc} (a port is 1 to 65535)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r} is not an http:// or https:// URL with a host")
    if port == 0:
        raise UsageError(f"--url {url!r}: port 0 cannot be connected to (a port is 1 to 65535)")


def run_phase(
    phase: PhaseName,
    pipeline: Path | None,
    run_dir: Path | None,
    seed: int | None,
    as_json: bool,
    ci: bool,
    expect: str | None,
    options: dict[str, Any] | None = None,
    *,
    allow_inconclusive: bool = False,
) -> None:
    if pipeline is None:
        raise UsageError(f"name a pipeline file: heisen {phase} pipeline.yaml")
    code = execute(
        pipeline,
        [phase],
        run_dir=run_dir,
        seed=seed,
        as_json=as_json,
        ci=ci,
        expect=expect,
        options={phase: options or {}},
        allow_inconclusive=allow_inconclusive,
    )
    raise typer.Exit(code)


@app.command("predict")
def predict_command(
    pipeline: PipelineArg,
    agents: Annotated[int | None, typer.Option(help="Concurrent virtual users per cycle.")] = None,
    cycles: Annotated[
        int | None, typer.Option(help="Independent repetitions of the workload.")
    ] = None,
    calibrate: Annotated[
        Path | None,
        typer.Option(help="Refit latencies from an earlier run dir, then predict again."),
    ] = None,
    observe: Annotated[
        bool,
        typer.Option(
            "--observe",
            help="Read the running system's own traffic, even when the pipeline gives an "
            "architecture.",
        ),
    ] = False,
    run_dir: RunDirOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
    ci: CiOpt = False,
) -> None:
    """Rank where races are likely: from the running system's own traffic (observe mode, the
    default without an architecture), or by simulating the pipeline's architecture model."""
    options = {
        "agents": agents,
        "cycles": cycles,
        "calibrate": str(calibrate) if calibrate else None,
        "observe": observe,
    }
    run_phase(
        PhaseName.PREDICT,
        pipeline,
        run_dir,
        seed,
        as_json,
        ci,
        None,
        {k: v for k, v in options.items() if v},
    )


@app.command("stress")
def stress_command(
    pipeline: OptionalPipelineArg = None,
    url: Annotated[
        str | None, typer.Option(help="Ad hoc: the URL to load, without a pipeline.")
    ] = None,
    method: Annotated[str, typer.Option("-X", "--method", help="Ad hoc: HTTP method.")] = "GET",
    header: Annotated[
        list[str] | None, typer.Option("-H", "--header", help="Ad hoc: 'Name: value'.")
    ] = None,
    data: Annotated[str | None, typer.Option("-d", "--data", help="Ad hoc: request body.")] = None,
    burst: Annotated[int | None, typer.Option(help="Ad hoc: N requests released together.")] = None,
    rate: Annotated[str | None, typer.Option(help="Ad hoc: open model rate, e.g. 500/s.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Ad hoc: closed model copies.")] = None,
    duration: Annotated[str | None, typer.Option(help="Ad hoc: how long, e.g. 10s.")] = None,
    repeat: Annotated[int, typer.Option(help="Ad hoc: repeat the load K times.")] = 1,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="Ad hoc: what a --burst speaks: http/1.1 (default), h2 (h2c prior knowledge) "
            "or auto (h2 if the server answers the h2c preface)."
        ),
    ] = None,
    http2: Annotated[bool, typer.Option("--http2", help="Ad hoc: same as --protocol h2.")] = False,
    cacert: CacertOpt = None,
    insecure: InsecureOpt = False,
    cert: CertOpt = None,
    key: KeyOpt = None,
    allow_host: AllowHostOpt = None,
    hotspot: Annotated[int | None, typer.Option(help="Target predict's Nth hotspot.")] = None,
    trials: TrialsOpt = None,
    run_dir: RunDirOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
    ci: CiOpt = False,
    expect: ExpectOpt = None,
    allow_inconclusive: AllowInconclusiveOpt = False,
) -> None:
    """Reproduce a race with targeted, synchronized load and measure how often it happens."""
    if url is not None:
        from heisen.cli._adhoc import show_load
        from heisen.stress.adhoc import AdHocLoad, run_adhoc

        _check_url(url)
        load = AdHocLoad(
            url=url,
            method=method,
            headers=header or [],
            data=data,
            burst=burst,
            rate=rate,
            concurrency=concurrency,
            duration=duration,
            repeat=repeat,
            http2=http2,
            protocol=protocol,
            cacert=cacert,
            insecure=insecure,
            cert=cert,
            key=key,
            allow_hosts=allow_host or [],
        )
        raise typer.Exit(show_load(run_adhoc(load), as_json=as_json))
    options = {"hotspot": hotspot, "trials": trials}
    run_phase(
        PhaseName.STRESS,
        pipeline,
        run_dir,
        seed,
        as_json,
        ci,
        expect,
        {key: value for key, value in options.items() if value},
        allow_inconclusive=allow_inconclusive,
    )


@app.command("fuzz")
def fuzz_command(
    pipeline: OptionalPipelineArg = None,
    openapi: Annotated[Path | None, typer.Option(help="Ad hoc: an OpenAPI 3 document.")] = None,
    url: Annotated[str | None, typer.Option(help="Ad hoc: the service's base URL.")] = None,
    operation: Annotated[str | None, typer.Option(help="Ad hoc: e.g. 'POST /orders'.")] = None,
    cases: Annotated[int, typer.Option(help="Ad hoc: how many cases.")] = 100,
    cacert: CacertOpt = None,
    insecure: InsecureOpt = False,
    cert: CertOpt = None,
    key: KeyOpt = None,
    allow_host: AllowHostOpt = None,
    run_dir: RunDirOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
    ci: CiOpt = False,
    expect: ExpectOpt = None,
    allow_inconclusive: AllowInconclusiveOpt = False,
    replay_args: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
) -> None:
    """Send edge-case payloads concurrently, shrink what fails, and print how to replay it
    ('replay RUN_DIR CASE_ID': resend one failing case, exit 1 while it still fails)."""
    if pipeline == Path("replay"):
        from heisen.cli.fuzz_replay import replay_case

        raise typer.Exit(replay_case(replay_args or []))
    if replay_args:
        raise UsageError(f"heisen fuzz takes one pipeline file, not also {' '.join(replay_args)}")
    if openapi is not None or url is not None:
        from heisen import events
        from heisen.cli._adhoc import FuzzProgress, show_fuzz
        from heisen.cli._tls_flags import tls_of_flags
        from heisen.console import make_console
        from heisen.fuzz.adhoc import run_adhoc_fuzz
        from heisen.runner import default_run_dir

        if openapi is None or url is None:
            raise UsageError("ad hoc fuzzing needs both --openapi SPEC and --url BASE")
        _check_url(url)
        tls = tls_of_flags(url, cacert, insecure, cert, key)
        console = make_console(stderr=True)
        progress = FuzzProgress(console)
        try:
            result = run_adhoc_fuzz(
                openapi,
                url,
                operation=operation,
                cases=cases,
                seed=seed,
                run_dir=run_dir or default_run_dir(),
                emit=events.discard if as_json else progress,
                tls=tls,
                allow_hosts=allow_host or [],
            )
        finally:
            progress.close()
        raise typer.Exit(show_fuzz(result, as_json=as_json))
    run_phase(
        PhaseName.FUZZ,
        pipeline,
        run_dir,
        seed,
        as_json,
        ci,
        expect,
        allow_inconclusive=allow_inconclusive,
    )


@app.command("contain")
def contain_command(
    pipeline: PipelineArg,
    render: Annotated[
        bool, typer.Option("--render", help="Print kubectl-applicable YAML and exit.")
    ] = False,
    trials: TrialsOpt = None,
    run_dir: RunDirOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
    ci: CiOpt = False,
    expect: ExpectOpt = None,
    allow_inconclusive: AllowInconclusiveOpt = False,
) -> None:
    """Run replicas under real CPU and memory limits (cgroups, or Kubernetes) and re-run the scenario."""
    if render:
        import sys

        from heisen.contain.render import render_pipeline
        from heisen.pipeline import load_pipeline

        sys.stdout.write(render_pipeline(load_pipeline(pipeline)).yaml)
        sys.stdout.flush()
        raise typer.Exit(0)
    run_phase(
        PhaseName.CONTAIN,
        pipeline,
        run_dir,
        seed,
        as_json,
        ci,
        expect,
        {"trials": trials} if trials else None,
        allow_inconclusive=allow_inconclusive,
    )


@app.command("chaos")
def chaos_command(
    pipeline: PipelineArg,
    run_dir: RunDirOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
    ci: CiOpt = False,
    expect: ExpectOpt = None,
    allow_inconclusive: AllowInconclusiveOpt = False,
) -> None:
    """Kill replicas and inject network faults under load; verify the fix holds and nothing is lost."""
    run_phase(
        PhaseName.CHAOS,
        pipeline,
        run_dir,
        seed,
        as_json,
        ci,
        expect,
        allow_inconclusive=allow_inconclusive,
    )
