"""`heisen fuzz --openapi SPEC --url BASE`: fuzz a running service with no pipeline and no system.

Every operation of the document that takes a JSON body or parameters (or
the one named by `--operation`) gets its seeded cases, after the failing
cases of earlier runs in the same runs folder. Oracles: 5xx, timeout,
reset and responses that break the document. Failures are shrunk, stored in
`RUN_DIR/fuzz-corpus/` and summed up in `RUN_DIR/fuzz.json`. `run_adhoc_fuzz`
returns an `AdHocFuzzResult`; the command line shows it (a table, or
with `--json` that JSON alone, on stdout) and exits 1 when a case failed.

An `https://` URL is fuzzed over TLS with the settings of the ad hoc flags
(`--cacert`, `--insecure`, `--cert`, `--key`, as ad hoc stress takes them;
without any, the system's CA store); a handshake the service refuses is
SystemUnavailable (exit 3) naming why, before any case. Targets are loopback
only unless named with `--allow-host HOST`, the rule of a pipeline's
`allow_hosts:`.
"""

from __future__ import annotations

import json
import shlex
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from heisen import events
from heisen._serialised import JsonObject
from heisen.errors import SystemUnavailable, UsageError
from heisen.outputs import FuzzFailure

if TYPE_CHECKING:
    from heisen.system import TlsSettings

__all__ = ["RESULT_NAME", "AdHocFuzzResult", "OperationReport", "run_adhoc_fuzz"]

RESULT_NAME = "fuzz.json"
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class OperationReport:
    """One operation fuzzed: its cases, what failed (as `fuzz.json` holds it), what it sent."""

    operation: str
    cases: int
    regression: int  # cases from earlier runs' corpora, tried first
    failures: list[FuzzFailure]
    by_outcome: dict[str, int]
    requests: int
    status_codes: dict[str, int]
    errors: dict[str, int]
    rerun: str

    @property
    def unique_failures(self) -> list[FuzzFailure]:
        """One failure per distinct bug (signature): all of them, now that they are grouped."""
        return list(self.failures)

    def alike(self, failure: FuzzFailure) -> int:
        """How many other cases failed like `failure` (with its signature)."""
        return failure.hits - 1

    def to_dict(self) -> JsonObject:
        return {
            "operation": self.operation,
            "cases": self.cases,
            "regression": self.regression,
            "failures": [failure.to_manifest() for failure in self.failures],
            "by_outcome": self.by_outcome,
            "requests": self.requests,
            "status_codes": self.status_codes,
            "errors": self.errors,
            "rerun": self.rerun,
        }


@dataclass(frozen=True)
class AdHocFuzzResult:
    """Every operation fuzzed against `url`, with the seed and run dir that replay them."""

    openapi: Path
    url: str
    seed: int
    run_dir: Path
    operations: list[OperationReport]

    @property
    def failures(self) -> int:
        return sum(len(report.failures) for report in self.operations)

    @property
    def status(self) -> str:
        return "failed" if self.failures else "passed"

    def to_dict(self) -> JsonObject:
        """As `fuzz.json` and `--json` hold it (serialisation boundary)."""
        return {
            "openapi": str(self.openapi.resolve()),
            "url": self.url,
            "seed": self.seed,
            "run_dir": str(self.run_dir),
            "status": self.status,
            "failures": self.failures,
            "operations": [report.to_dict() for report in self.operations],
        }


def run_adhoc_fuzz(
    openapi: Path,
    url: str,
    *,
    operation: str | None,
    cases: int,
    seed: int | None,
    run_dir: Path,
    emit: events.EventSink = events.discard,
    tls: TlsSettings | None = None,
    allow_hosts: Sequence[str] = (),
) -> AdHocFuzzResult:
    """Fuzz `url` with the operations of `openapi`; what failed is in the result and `fuzz.json`.

    `tls`: how to speak TLS to an https:// `url` (None: verify against the system's CA
    store); `allow_hosts`: hosts other than loopback that may be fuzzed.

    `emit` hears a `Progress` as each operation starts (and is done) and a
    `Warning` for a corpus of an earlier run that could not be read.
    """
    from heisen import seeds
    from heisen.fuzz._openapi import find_operation, load_openapi

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
    base, prefix, host, port = _base(url, allow_hosts)
    _reachable(host, port, url)
    tls = _tls(url, tls)
    seed = seed if seed is not None else seeds.new_seed()
    run_dir.mkdir(parents=True, exist_ok=True)
    reports = [
        _fuzz_operation(
            op, base, prefix, host, port, openapi, url, cases, seed, run_dir, emit, tls, allow_hosts
        )
        for op in operations
    ]
    result = AdHocFuzzResult(openapi, url, seed, run_dir, reports)
    from heisen._redact import redact

    (run_dir / RESULT_NAME).write_text(
        json.dumps(redact(result.to_dict()), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return result


def _base(url: str, allow_hosts: Sequence[str]) -> tuple[str, str, str, int]:
    """`http://127.0.0.1:8080/api` → (`http://127.0.0.1:8080`, `/api`, host, port), loopback
    or `allow_hosts` only."""
    from heisen.system import check_address

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--url {url!r} is not an http:// or https:// URL (for example http://127.0.0.1:8080)"
        )
    check_address(url, list(allow_hosts), "--url")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/"), parts.hostname, port


def _tls(url: str, tls: TlsSettings | None) -> TlsSettings | None:
    """The TLS settings of an https:// `url` (the system's CA store when none are given)."""
    from heisen.system import TlsSettings

    if urlsplit(url).scheme != "https":
        if tls is not None:
            raise UsageError(f"TLS options go with an https:// URL, and --url {url!r} is http://")
        return None
    return tls if tls is not None else TlsSettings()


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
    emit: events.EventSink,
    tls: TlsSettings | None,
    allow_hosts: Sequence[str],
) -> OperationReport:
    from heisen import seeds
    from heisen.fuzz._campaign import Budget, run_campaign
    from heisen.fuzz._cases import generate_cases
    from heisen.fuzz._corpus import Corpus
    from heisen.fuzz._phase import failure_record, previous_cases, unique_cases
    from heisen.fuzz._replay import tls_words
    from heisen.fuzz._send import Sender, Target

    def warn(text: str) -> None:
        emit(events.Warning("fuzz", text))

    previous = previous_cases(run_dir, operation.key, warn)
    generated = generate_cases(
        operation, seed=seeds.derive(seed, "fuzz", operation.key), count=count
    )
    cases = unique_cases([*previous, *generated])
    target = Target(
        operation.method, prefix + operation.path, (), operation, operation.body is not None
    )
    sender = Sender(host, port, target, timeout_s=TIMEOUT_S, tls=tls, tls_flags=True)
    emit(events.Progress("fuzz", f"fuzzing {operation.key}"))
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
        emit(events.Progress("fuzz", f"fuzzed {operation.key}", completed=1, total=1))
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
            *tls_words(tls),
            *(word for host in allow_hosts for word in ("--allow-host", host)),
        ]
    )
    entries = [
        failure_record(f, target, base, run_dir, openapi=openapi, rerun=rerun, tls=tls)
        for f in failures
    ]
    return OperationReport(
        operation=operation.key,
        cases=len(cases),
        regression=len(previous),
        failures=entries,
        by_outcome=dict(sorted(Counter(f.outcome.value for f in failures).items())),
        requests=sender.tally.requests,
        status_codes=dict(sorted(sender.tally.status_codes.items())),
        errors=dict(sorted(sender.tally.errors.items())),
        rerun=rerun,
    )
