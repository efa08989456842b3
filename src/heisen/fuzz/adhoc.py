"""`heisen fuzz --openapi SPEC --url BASE`: fuzz a running service with no pipeline and no system.

Every operation of the document that takes a JSON body or parameters (or
the one named by `--operation`) gets its seeded cases, after the failing
cases of earlier runs in the same runs folder. Oracles: 5xx, timeout,
reset and responses that break the document. Failures are shrunk, stored in
`RUN_DIR/fuzz-corpus/` and summed up in `RUN_DIR/fuzz.json`; the terminal
gets a table (stderr) or, with `--json`, stdout gets that JSON and nothing else.
"""

from __future__ import annotations

import json
import shlex
import socket
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from heisen.errors import EXIT_OK, EXIT_VIOLATION, SystemUnavailable, UsageError

RESULT_NAME = "fuzz.json"
TIMEOUT_S = 5.0


def run_adhoc_fuzz(
    openapi: Path,
    url: str,
    *,
    operation: str | None,
    cases: int,
    seed: int | None,
    run_dir: Path | None,
    as_json: bool,
) -> int:
    """Fuzz `url` with the operations of `openapi`; 1 when something failed, 0 otherwise."""
    from heisen import seeds
    from heisen.console import make_console, write_json
    from heisen.fuzz._openapi import find_operation, load_openapi
    from heisen.runner import default_run_dir

    if cases < 1:
        raise UsageError(f"--cases must be at least 1, not {cases}")
    if not openapi.is_file():
        raise UsageError(f"--openapi {openapi}: no such file")
    document = load_openapi(openapi)
    if operation is not None:
        operations = [find_operation(document, operation)]
    else:
        operations = [
            op
            for op in document.operations
            if op.body is not None or op.path_params or op.query_params
        ]
        if not operations:
            raise UsageError(f"{openapi} has no operation with a JSON body or parameters to fuzz")
    base, prefix, host, port = _base(url)
    _reachable(host, port, url)
    seed = seed if seed is not None else seeds.new_seed()
    run_dir = run_dir or default_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    console = make_console(stderr=True)
    reports = [
        _fuzz_operation(
            op,
            base,
            prefix,
            host,
            port,
            openapi,
            url,
            cases,
            seed,
            run_dir,
            None if as_json else console,
        )
        for op in operations
    ]
    failing = sum(len(r["failures"]) for r in reports)
    result = {
        "openapi": str(openapi.resolve()),
        "url": url,
        "seed": seed,
        "run_dir": str(run_dir),
        "status": "failed" if failing else "passed",
        "failures": failing,
        "operations": reports,
    }
    from heisen._redact import redact

    (run_dir / RESULT_NAME).write_text(
        json.dumps(redact(result), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    if as_json:
        write_json(result)
    else:
        _render(console, result)
    return EXIT_VIOLATION if failing else EXIT_OK


def _base(url: str) -> tuple[str, str, str, int]:
    """`http://127.0.0.1:8080/api` → (`http://127.0.0.1:8080`, `/api`, host, port), loopback only."""
    from heisen.system import check_address

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(f"--url {url!r} is not an http:// URL (for example http://127.0.0.1:8080)")
    check_address(url, [], "--url")
    port = parts.port or 80
    return f"http://{parts.netloc}", parts.path.rstrip("/"), parts.hostname, port


def _reachable(host: str, port: int, url: str) -> None:
    try:
        socket.create_connection((host, port), timeout=3.0).close()
    except OSError as exc:
        raise SystemUnavailable(
            f"cannot reach {url}: {exc.strerror or exc}; is the service running?"
        ) from exc


def _fuzz_operation(
    operation: Any,
    base: str,
    prefix: str,
    host: str,
    port: int,
    openapi: Path,
    url: str,
    count: int,
    seed: int,
    run_dir: Path,
    console: Any,
) -> dict[str, Any]:
    from heisen import seeds
    from heisen.fuzz._cases import generate_cases
    from heisen.fuzz._corpus import Corpus
    from heisen.fuzz._phase import failure_entry, previous_cases, unique_cases
    from heisen.fuzz._send import Budget, Sender, Target, run_campaign

    def warn(text: str) -> None:
        if console is not None:
            console.print(f"[yellow]warning:[/] {text}", markup=True)

    previous = previous_cases(run_dir, operation.key, warn)
    generated = generate_cases(
        operation, seed=seeds.derive(seed, "fuzz", operation.key), count=count
    )
    cases = unique_cases([*previous, *generated])
    target = Target(
        operation.method, prefix + operation.path, (), operation, operation.body is not None
    )
    sender = Sender(host, port, target, timeout_s=TIMEOUT_S)
    status = console.status(f"fuzzing {operation.key}") if console is not None else None
    if status is not None:
        status.start()
    try:
        failures = run_campaign(
            sender,
            cases,
            budget=Budget(),
            schema=operation.body,
            corpus=Corpus(run_dir),
            operation=operation.key,
            shrunk_before=frozenset(c.id for c in previous),
        )
    finally:
        if status is not None:
            status.stop()
    rerun = shlex.join(
        [
            "heisen",
            "fuzz",
            "--openapi",
            str(openapi.resolve()),
            "--url",
            url,
            "--operation",
            operation.key,
            "--cases",
            str(count),
            "--seed",
            str(seed),
        ]
    )
    entries = [
        failure_entry(f, target, base, run_dir, openapi=openapi, rerun=rerun) for f in failures
    ]
    return {
        "operation": operation.key,
        "cases": len(cases),
        "regression": len(previous),
        "failures": entries,
        "by_outcome": dict(sorted(Counter(f.outcome.value for f in failures).items())),
        "requests": sender.tally.requests,
        "status_codes": dict(sorted(sender.tally.status_codes.items())),
        "errors": dict(sorted(sender.tally.errors.items())),
        "rerun": rerun,
    }


def _render(console: Any, result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"heisen fuzz {result['url']} (seed {result['seed']})", show_lines=True)
    for column in ("operation", "cases", "outcome", "case", "shrunk to", "replay"):
        table.add_column(column, overflow="fold")
    for report in result["operations"]:
        unique = [f for f in report["failures"] if not f.get("duplicate_of")]
        if not unique:
            table.add_row(escape(report["operation"]), str(report["cases"]), "passed", "", "", "")
        for failure in unique:
            same = sum(1 for f in report["failures"] if f.get("duplicate_of") == failure["id"])
            outcome = failure["outcome"] + (f" (+{same} alike)" if same else "")
            table.add_row(
                escape(report["operation"]),
                str(report["cases"]),
                outcome,
                escape(failure["label"]),
                escape(failure["shrunk"]),
                escape(failure["replay"]),
            )
    console.print(table)
    verdict = "[bold red]failed[/]" if result["failures"] else "[bold green]passed[/]"
    console.print(
        f"{verdict}: {result['failures']} failing case(s); corpus and {RESULT_NAME} in "
        f"{escape(result['run_dir'])}"
    )
