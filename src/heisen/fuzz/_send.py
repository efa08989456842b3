"""Send one fuzz case and say how it went.

A case goes out as a burst of `concurrency` identical requests (the
synchronized burst of `heisen.stress`), so a payload that only hurts when
several copies race is caught too. The outcome is the first of these that
applies, most severe first:

    replica-died    a replica's process exited or was restarted (`SystemChecks`)
    reset           a connection was reset or closed without a full answer
    timeout         no answer within the timeout
    5xx             a server error status
    invariant       a probe invariant of the pipeline was violated afterwards
    nonconforming   a response departs from the OpenAPI document

or None when the case passed. `Sender.outcome` is also the predicate the
shrinker calls, so a shrunk payload fails the same way as the original.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from heisen.errors import NotEvaluated, SystemUnavailable
from heisen.fuzz._cases import FuzzCase
from heisen.fuzz._openapi import Operation
from heisen.fuzz._replay import full_url, render_path, render_query
from heisen.fuzz._signature import Signature, error_shape, without_numbers

if TYPE_CHECKING:
    from heisen.stress import HttpRequest, RequestRecord
    from heisen.system import TlsSettings

_RESET_ERRORS = frozenset({"reset", "closed", "protocol"})
REPLICA_READY_DEADLINE_S = 20.0
DEATH_GRACE_S = 1.0
RECORD_BODY_CAP = 64 * 1024
"""Bytes of a response body a `RequestRecord` keeps (`BODY_CAP` of stress's records; the
fuzz tests check they agree): a body that long may have been cut, so it is not judged."""


class Outcome(enum.StrEnum):
    REPLICA_DIED = "replica-died"
    RESET = "reset"
    TIMEOUT = "timeout"
    SERVER_ERROR = "5xx"
    INVARIANT = "invariant"
    NONCONFORMING = "nonconforming"

    @property
    def fail_on(self) -> str:
        """What `python -m heisen.fuzz._replay --fail-on` checks for this outcome."""
        return _FAIL_ON[self]


_FAIL_ON = {
    Outcome.REPLICA_DIED: "reset,5xx",
    Outcome.RESET: "reset",
    Outcome.TIMEOUT: "timeout",
    Outcome.SERVER_ERROR: "5xx",
    Outcome.INVARIANT: "5xx",
    Outcome.NONCONFORMING: "nonconforming",
}


@dataclass(frozen=True)
class Target:
    """Where cases go: the method, the path template (`/events/{event_id}/checkout`), fixed headers."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    operation: Operation | None = None
    has_body: bool = True

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def concrete_path(self, case: FuzzCase) -> str:
        return render_path(self.path, case.path_params)

    def request(self, case: FuzzCase, payload: Any) -> HttpRequest:
        from heisen.stress import HttpRequest

        path = self.concrete_path(case)
        if case.query:
            path += "?" + render_query(case.query)
        headers = dict(self.headers)
        body = b""
        if self.has_body:
            from heisen.fuzz._values import encode_payload

            body = encode_payload(payload)
            headers.setdefault("Content-Type", "application/json")
        return HttpRequest(self.method.upper(), path, tuple(headers.items()), body)

    def url(self, base_url: str, case: FuzzCase) -> str:
        return full_url(base_url, self.concrete_path(case), case.query)


@dataclass(frozen=True)
class Verdict:
    """How one sending of a case went."""

    outcome: Outcome | None
    detail: str
    statuses: tuple[int, ...] = ()
    status: int | None = None
    """The status that showed the failure (None: no answer)."""
    shape: str = ""
    """The shape of the error (see `heisen.fuzz._signature.error_shape`)."""

    def signature(self, field: str | None) -> Signature:
        assert self.outcome is not None
        shape = self.shape or without_numbers(self.detail)
        return Signature(self.outcome.value, self.status, shape, field)


@dataclass
class Tally:
    """Requests, status codes and transport errors over everything sent (shrinking included)."""

    requests: int = 0
    status_codes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, records: Sequence[RequestRecord]) -> None:
        self.requests += len(records)
        for record in records:
            if record.status is not None:
                self.status_codes[str(record.status)] += 1
            if record.error is not None:
                self.errors[record.error] += 1


class SystemChecks:
    """The oracles that need the running system: setup before, replicas and invariants after."""

    def __init__(self, pipeline: Any, system: Any, context: Mapping[str, Any]) -> None:
        from heisen.oracle.pipeline_invariants import is_probe

        self.pipeline = pipeline
        self.system = system
        self.context = dict(context)
        # An expect: over `load.` judges the scenario's load, which a fuzz case does not run.
        self.invariants = [
            inv for inv in pipeline.invariants if is_probe(inv) and not _reads_load(inv.expect)
        ]
        self.replica_sets = self._replica_sets()

    def _replica_sets(self) -> list[Any]:
        from heisen.errors import UsageError

        found = []
        for name in self.pipeline.services:
            try:
                found.append(self.system.replicas(name))
            except UsageError:  # already running at a url: nothing heisen can watch
                continue
        return found

    def setup(self) -> None:
        from heisen.oracle.pipeline_invariants import run_setup

        self.wait_ready()
        run_setup(self.pipeline, self.system)

    def snapshot(self) -> list[tuple[int | None, int, bool]]:
        return [
            (r.pid, r.restarts, r.alive) for rs in self.replica_sets for r in rs.replicas_info()
        ]

    def replica_died(self, before: list[tuple[int | None, int, bool]]) -> str | None:
        after = self.snapshot()
        for index, (old, new) in enumerate(zip(before, after, strict=False)):
            if old[0] != new[0] or new[1] > old[1] or (old[2] and not new[2]):
                return f"replica {index} (pid {old[0]}) died while handling the case"
        return None

    def death_after(self, before: list[tuple[int | None, int, bool]]) -> str | None:
        """A replica death that shows within a moment of a reset or timeout (the exit takes time)."""
        deadline = time.monotonic() + DEATH_GRACE_S
        while True:
            died = self.replica_died(before)
            if died is not None or time.monotonic() >= deadline:
                return died
            time.sleep(0.05)

    def wait_ready(self) -> None:
        """Until every replica is up again after a crash (bounded)."""
        deadline = time.monotonic() + REPLICA_READY_DEADLINE_S
        while time.monotonic() < deadline:
            infos = [r for rs in self.replica_sets for r in rs.replicas_info()]
            if all(r.ready and r.alive for r in infos):
                return
            time.sleep(0.05)

    def violated(self, index: int) -> str | None:
        from heisen.oracle.pipeline_invariants import evaluate_probe

        context = {**self.context, "trial": index}
        for invariant in self.invariants:
            verdict = evaluate_probe(self.pipeline, self.system, invariant, context)
            if verdict.held is False:
                return f"{invariant.name}: {verdict.message}"
            if verdict.held is None:
                raise NotEvaluated(
                    f"fuzz case {index}: {invariant.name} could not be evaluated: {verdict.message}",
                    fault=verdict.fault or "environment",
                )
        return None


def _reads_load(expect: str | None) -> bool:
    from heisen.oracle.expr import parse_expression

    return bool(expect) and "load" in parse_expression(expect or "").names


class Sender:
    """Sends cases to `host:port` and classifies what came back.

    `tls`: how to speak TLS to it (None: plain HTTP), over HTTP/1.1; `tls_flags`: a TLS
    problem's advice names the ad hoc command line's flags, not the pipeline's `tls:`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        target: Target,
        *,
        concurrency: int = 1,
        timeout_s: float = 10.0,
        checks: SystemChecks | None = None,
        on_send: Callable[[], None] | None = None,
        tls: TlsSettings | None = None,
        tls_flags: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.target = target
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.checks = checks
        self.tally = Tally()
        self.sent = 0
        self.on_send = on_send
        self.tls = tls
        self.tls_flags = tls_flags

    def check_tls(self) -> None:
        """SystemUnavailable (exit 3) naming the TLS problem when the service refuses this
        client: once, before the first case, rather than as a reset on every case."""
        from heisen.stress import check_tls_accepted, tls_client

        client = tls_client(self.tls)
        if client is not None:
            asyncio.run(check_tls_accepted(self.host, self.port, client, flags=self.tls_flags))

    def outcome(self, case: FuzzCase, payload: Any = None, *, use_payload: bool = False) -> Verdict:
        """Send `case` (with `payload` instead of its own when `use_payload`) and classify it."""
        from heisen.stress import run_burst, tls_client

        body = payload if use_payload else case.payload
        request = self.target.request(case, body)
        before = None
        if self.checks is not None:
            self.checks.setup()
            before = self.checks.snapshot()
        burst = functools.partial(
            run_burst,
            self.host,
            self.port,
            [request] * self.concurrency,
            timeout_s=self.timeout_s,
            settle_s=0.02 if self.concurrency > 1 else 0.0,
            tls=tls_client(self.tls),
        )
        try:
            result = asyncio.run(burst())
        except SystemUnavailable:
            if self.checks is None:
                raise
            # The front had no ready replica for a moment (one is restarting): wait, then once more.
            self.checks.wait_ready()
            result = asyncio.run(burst())
        self.sent += 1
        self.tally.add(result.records)
        if self.on_send is not None:
            self.on_send()
        verdict = classify(result.records, self.target.operation)
        if self.checks is not None and before is not None:
            if verdict.outcome in (Outcome.RESET, Outcome.TIMEOUT):
                died = self.checks.death_after(before)
            else:
                died = self.checks.replica_died(before)
            if died is not None:
                self.checks.wait_ready()
                return Verdict(Outcome.REPLICA_DIED, died, verdict.statuses, shape="replica died")
            if verdict.outcome is None or verdict.outcome is Outcome.NONCONFORMING:
                broken = self.checks.violated(self.sent)
                if broken is not None:
                    return Verdict(Outcome.INVARIANT, broken, verdict.statuses)
        return verdict


def classify(records: Sequence[RequestRecord], operation: Operation | None) -> Verdict:
    """The outcome of one burst from its records alone (transport, status, conformance)."""
    statuses = tuple(sorted({r.status for r in records if r.status is not None}))
    errors = Counter(r.error for r in records if r.error is not None)
    reset = sum(n for kind, n in errors.items() if kind in _RESET_ERRORS)
    if reset:
        return Verdict(
            Outcome.RESET, f"{reset}/{len(records)} connections closed without an answer", statuses
        )
    if errors.get("timeout"):
        return Verdict(
            Outcome.TIMEOUT, f"{errors['timeout']}/{len(records)} requests got no answer", statuses
        )
    server_errors = [r for r in records if r.status is not None and r.status >= 500]
    if server_errors:
        first = server_errors[0]
        return Verdict(
            Outcome.SERVER_ERROR,
            f"status {first.status}: {_snippet(first.body)}",
            statuses,
            first.status,
            error_shape(first.body),
        )
    unchecked: list[str] = []
    if operation is not None:
        from heisen.fuzz._conformance import check_response, check_status

        for record in records:
            if record.status is None:
                continue
            body = _body_of(record)
            if len(body) >= RECORD_BODY_CAP:  # cut off: only the status can be judged
                problems = check_status(operation, record.status)
                unchecked.append(f"body not checked: truncated at {RECORD_BODY_CAP} bytes")
            else:
                problems = check_response(operation, record.status, _headers_of(record), body)
            if problems:
                shape = without_numbers("; ".join(sorted(problems)))
                return Verdict(
                    Outcome.NONCONFORMING, "; ".join(problems[:3]), statuses, record.status, shape
                )
    return Verdict(None, "; ".join(["passed", *sorted(set(unchecked))]), statuses)


def _headers_of(record: RequestRecord) -> dict[str, str]:
    """Records keep no response headers: a body that parses as JSON is taken as JSON, else as text."""
    body = _body_of(record)
    if not body.strip():
        return {}
    try:
        json.loads(body)
    except ValueError:
        return {"Content-Type": "text/plain"}
    return {"Content-Type": "application/json"}


def _body_of(record: RequestRecord) -> bytes:
    return bytes(record.body or b"")


def _snippet(body: bytes, limit: int = 120) -> str:
    text = bytes(body or b"").decode("utf-8", "replace").strip().replace("\n", " ")
    return (text[:limit] + "…") if len(text) > limit else (text or "(empty body)")
