"""The fuzz phase: edge-case payloads sent concurrently through the service front, shrunk on failure.

Cases that failed in earlier runs (the `fuzz-corpus/` of sibling run dirs)
go first, then the seeded catalogue of `generate_cases`. Each case runs
after the scenario setup and is judged by `_send`; failures are shrunk,
stored in this run's corpus and reported with two commands: `replay` (one
request, exits 1 while it still fails) and `rerun` (the whole phase with
the same seed).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from heisen import events, outputs, seeds
from heisen.errors import PipelineError, UsageError
from heisen.fuzz._campaign import Budget, Failure, run_campaign
from heisen.fuzz._cases import FuzzCase, generate_cases
from heisen.fuzz._corpus import CORPUS_DIR, Corpus, load_previous
from heisen.fuzz._openapi import Operation, find_operation, load_openapi
from heisen.fuzz._replay import curl_command
from heisen.fuzz._schema import FieldSpec, Schema, schema_from_fields
from heisen.fuzz._send import Outcome, Sender, SystemChecks, Target, Verdict
from heisen.fuzz._values import encode_payload, encode_text
from heisen.fuzz.replay import REPLAY_DIR, ReplayCase, save_case
from heisen.manifest import PhaseStatus
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.schema import FuzzSection
from heisen.system import TlsSettings, service_tls

MAX_SHOWN_PAYLOAD = 2000
MAX_FINDINGS = 10
MAX_LISTED_CASES = 20


def run(ctx: PhaseContext) -> PhaseResult:
    section = ctx.pipeline.phases.fuzz
    assert section is not None, "the runner skips fuzz when the pipeline has no section"
    target, fixed, openapi = _target(ctx, section)
    operation = target.operation
    subject: Operation | Schema | None = operation
    if section.fields:
        body = schema_from_fields(
            {k: FieldSpec.model_validate(v.model_dump()) for k, v in section.fields.items()}
        )
        subject = dataclasses.replace(operation, body=body) if operation is not None else body
    previous = _previous_cases(ctx, target.key)
    generated = generate_cases(
        subject,
        seed=seeds.derive(ctx.seed, "fuzz"),
        count=section.cases,
        max_string_bytes=section.max_string_bytes,
        path_params=fixed,
    )
    cases = unique_cases([*previous, *generated])
    assert ctx.system is not None
    name = target_service(ctx) or next(iter(ctx.pipeline.services))
    host, port = ctx.system.service_address(name)
    tls = service_tls(ctx.pipeline, name, ctx.loaded.base_dir)
    checks = SystemChecks(
        ctx.pipeline,
        ctx.system,
        {"seed": ctx.seed, "run_dir": str(ctx.run_dir), "deps": {}, "services": {}},
    )
    sender = Sender(
        host,
        port,
        target,
        concurrency=section.concurrency,
        timeout_s=ctx.pipeline.scenario.timeout,
        checks=checks,
        tls=tls,
    )
    corpus = Corpus(ctx.run_dir)
    schema = subject.body if isinstance(subject, Operation) else subject
    failures = run_campaign(
        sender,
        cases,
        budget=Budget(enabled=section.shrink),
        schema=schema,
        corpus=corpus,
        operation=target.key,
        shrunk_before=frozenset(c.id for c in previous),
        progress=_progress(ctx),
    )
    base_url = _user_url(ctx)
    rerun = shlex.join(["heisen", "fuzz", str(ctx.loaded.path), "--seed", str(ctx.seed)])
    started = ctx.pipeline.services[name].url is None
    entries = [
        failure_record(
            f,
            target,
            base_url,
            ctx.run_dir,
            openapi=openapi,
            rerun=rerun,
            started=(name, str(ctx.loaded.path.resolve())) if started else None,
            tls=tls,
        )
        for f in failures
    ]
    by_outcome = Counter(f.outcome.value for f in failures)
    result = outputs.FuzzOutputs(
        cases=len(cases),
        regression=len(previous),
        operation=target.key,
        failures=entries,
        by_outcome=dict(sorted(by_outcome.items())),
        requests=sender.tally.requests,
        status_codes=dict(sorted(sender.tally.status_codes.items())),
        errors=dict(sorted(sender.tally.errors.items())),
        corpus=CORPUS_DIR if failures else None,
        seed=ctx.seed,
        replay_base_url=base_url,
        shrink_attempts=sum(f.shrink_attempts for f in failures),
    )
    findings = [_finding(entry) for entry in entries][:MAX_FINDINGS]
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(by_outcome.items())) or "none"
    hits = sum(f.hits for f in failures)
    summary = (
        f"{len(cases)} cases ({len(previous)} from earlier runs), {section.concurrency} at a time: "
        f"{len(failures)} distinct failures ({counts}) in {hits} failing cases; "
        f"{sender.tally.requests} requests"
    )
    status = PhaseStatus.FAILED if failures else PhaseStatus.PASSED
    artifacts = [CORPUS_DIR, REPLAY_DIR] if failures else []
    if (ctx.run_dir / "fuzz-cases").is_dir():
        artifacts.append("fuzz-cases")
    return PhaseResult(status, summary, result.to_manifest(), artifacts, findings=findings)


def _target(ctx: PhaseContext, section: FuzzSection) -> tuple[Target, dict[str, str], Path | None]:
    """The request cases go to, the path parameters every case keeps, and the OpenAPI file."""
    scenario = ctx.pipeline.scenario
    request = None
    if section.request is not None:
        if section.request not in scenario.requests:
            names = ", ".join(scenario.requests)
            raise UsageError(
                f"phases.fuzz.request: no scenario request named {section.request!r} (requests: {names})"
            )
        request = scenario.requests[section.request]
    openapi = ctx.loaded.resolve(section.openapi) if section.openapi else None
    operation = None
    if openapi is not None:
        if not openapi.is_file():
            raise UsageError(f"phases.fuzz.openapi: {openapi} does not exist")
        document = load_openapi(openapi)
        if section.operation:
            operation = find_operation(document, section.operation)
        elif request is not None:
            operation = _matching_operation(
                document.operations, request.method, _rendered_path(ctx, request.path)
            )
        else:
            listing = ", ".join(op.key for op in document.operations)
            raise UsageError(
                f"phases.fuzz: name the operation to fuzz with operation: (one of {listing}) "
                "or a scenario request with request:"
            )
    if operation is None:
        request = request or next(iter(scenario.requests.values()))
        target = Target(
            request.method, _rendered_path(ctx, request.path), tuple(request.headers.items())
        )
        return target, {}, None
    fixed: dict[str, str] = {}
    headers: tuple[tuple[str, str], ...] = ()
    if request is not None:
        concrete = _rendered_path(ctx, request.path)
        params = _path_params(operation.path, concrete)
        if params is None or request.method.upper() != operation.method:
            raise UsageError(
                f"phases.fuzz: request {section.request!r} ({request.method} {request.path}) "
                f"is not the operation {operation.key}"
            )
        fixed = dict(params)
        headers = tuple(request.headers.items())
    has_body = operation.body is not None or bool(section.fields)
    return Target(operation.method, operation.path, headers, operation, has_body), fixed, openapi


def _rendered_path(ctx: PhaseContext, path: str) -> str:
    from heisen import _templates

    context = {"trial": 0, "seed": ctx.seed, "run_id": ctx.manifest.run.id, "i": 0}
    # Faker is slow to build: only when the path uses it
    faker = seeds.faker(ctx.seed, "fuzz") if "faker." in path else None
    return str(_templates.render_text(path, _templates.mapping_resolver(context, faker)))


def _template_regex(template: str) -> re.Pattern[str]:
    """`/events/{event_id}` → a pattern whose groups are the parameters, in order."""
    parts = re.split(r"{[^{}]+}", template)
    return re.compile("([^/]+)".join(re.escape(part) for part in parts))


def _path_params(template: str, concrete: str) -> dict[str, str] | None:
    match = _template_regex(template).fullmatch(concrete)
    if match is None:
        return None
    return dict(zip(re.findall(r"{([^{}]+)}", template), match.groups(), strict=True))


def _matching_operation(operations: Sequence[Operation], method: str, path: str) -> Operation:
    for operation in operations:
        if operation.method == method.upper() and _template_regex(operation.path).fullmatch(path):
            return operation
    raise UsageError(
        f"phases.fuzz: no operation of the OpenAPI document matches {method.upper()} {path}; "
        "name it with operation:"
    )


def target_service(ctx: PhaseContext) -> str | None:
    section = ctx.pipeline.phases.fuzz
    if section is not None and section.request is not None:
        return str(ctx.pipeline.target_service(ctx.pipeline.scenario.requests[section.request]))
    return None


def _user_url(ctx: PhaseContext) -> str:
    """The URL a replay can use after the run: the service's own `url:`, else this run's front."""
    assert ctx.system is not None
    name = target_service(ctx) or next(iter(ctx.pipeline.services))
    service = ctx.pipeline.services[name]
    return str(service.url).rstrip("/") if service.url else str(ctx.system.service_url(name))


def _previous_cases(ctx: PhaseContext, operation: str) -> list[FuzzCase]:
    return previous_cases(
        ctx.run_dir, operation, lambda text: ctx.emit(events.Warning("fuzz", text))
    )


def previous_cases(run_dir: Path, operation: str, warn: Callable[[str], None]) -> list[FuzzCase]:
    """Failing cases of earlier runs in the same runs folder (and of this run dir), newest first."""
    found: list[FuzzCase] = []
    try:
        siblings = [d for d in run_dir.parent.iterdir() if (d / CORPUS_DIR).is_dir()]
    except OSError:
        siblings = []
    for directory in sorted(siblings, key=lambda d: (d / CORPUS_DIR).stat().st_mtime, reverse=True):
        try:
            found += load_previous([directory], operation=operation)
        except (PipelineError, OSError) as exc:
            warn(f"skipped the corpus in {directory}: {exc}")
    return found


def unique_cases(cases: list[FuzzCase]) -> list[FuzzCase]:
    seen: set[str] = set()
    unique = []
    for case in cases:
        if case.id not in seen:
            seen.add(case.id)
            unique.append(case)
    return unique


def _progress(ctx: PhaseContext) -> Callable[[int, int, FuzzCase, Verdict], None]:
    def report(index: int, total: int, case: FuzzCase, verdict: Verdict) -> None:
        if verdict.outcome is not None:
            ctx.emit(
                events.Progress(
                    "fuzz", f"case {index}/{total} {verdict.outcome}: {case.label}", index, total
                )
            )
        elif index == total or index % max(1, total // 10) == 0:
            ctx.emit(events.Progress("fuzz", f"{index}/{total} cases sent", index, total))

    return report


def shown(payload: Any) -> str:
    """A payload as it goes on the wire, cut for the manifest."""
    text = encode_text(payload)
    if len(text) <= MAX_SHOWN_PAYLOAD:
        return text
    return f"{text[:MAX_SHOWN_PAYLOAD]}… ({len(text)} characters; the whole case is in the corpus)"


def failure_record(
    failure: Failure,
    target: Target,
    base_url: str,
    run_dir: Path,
    *,
    openapi: Path | None,
    rerun: str | None,
    started: tuple[str, str] | None = None,
    tls: TlsSettings | None = None,
) -> outputs.FuzzFailure:
    """One item of `outputs.failures`, one distinct bug: what failed, how often, how small it
    got, and how to replay it (`curl` reads the body from `fuzz/<case>.json` in the run dir).

    `started` is (service, pipeline file) when heisen starts the service, so the replay does too;
    `tls`: how the service is spoken to over TLS, for the replay and the `curl` line.
    """
    from heisen.fuzz._request_schema import request_problems

    case = failure.case
    path = target.concrete_path(case)
    if case.query:
        from heisen.fuzz._replay import render_query

        path += "?" + render_query(case.query)
    nonconforming = failure.outcome is Outcome.NONCONFORMING and openapi is not None
    stored = ReplayCase(
        id=case.id,
        method=target.method.upper(),
        target=path,
        headers=dict(target.headers),
        fail_on=failure.outcome.fail_on,
        base_url=None if started else base_url,
        service=started[0] if started else None,
        pipeline=started[1] if started else None,
        signature=failure.signature.text,
        openapi=str(openapi.resolve()) if nonconforming and openapi else None,
        operation=target.key if nonconforming else None,
        **ReplayCase.tls_fields(tls),
    )
    save_case(run_dir, stored, encode_payload(failure.shrunk))
    body_file = Path(REPLAY_DIR) / f"{case.id}.json"
    replay = shlex.join(["heisen", "fuzz", "replay", str(run_dir), case.id])
    record = outputs.FuzzFailure(
        id=case.id,
        outcome=failure.outcome.value,
        label=case.label,
        payload=shown(case.payload),
        shrunk=shown(failure.shrunk),
        detail=failure.verdict.detail,
        statuses=list(failure.verdict.statuses),
        replay=rerun if failure.outcome is Outcome.INVARIANT and rerun else replay,
        curl=curl_command(
            base_url,
            target.method,
            target.concrete_path(case),
            failure.shrunk,
            dict(target.headers),
            query=case.query,
            body_file=body_file,
            write=False,
            tls=tls,
        ),
        shrink_attempts=failure.shrink_attempts,
        signature=failure.signature.text,
        field=failure.signature.field,
        hits=failure.hits,
        cases=list(failure.case_ids[:MAX_LISTED_CASES]),
        body_file=str(body_file),
    )
    if openapi is not None and target.operation is not None:
        problems = request_problems(openapi, target.key, failure.shrunk)
        if problems is not None:
            record.conforming = not problems
    if rerun:
        record.rerun = rerun
    if case.path_params:
        record.path_params = {k: encode_text(v) for k, v in case.path_params.items()}
    return record


def _finding(entry: outputs.FuzzFailure) -> Finding:
    message = (
        f"{entry.label}; shrunk to {entry.shrunk} ({entry.detail}); {entry.hits} case(s) hit it"
    )
    return Finding(
        "fuzz",
        entry.outcome,
        message,
        entry.replay,
        {"id": entry.id, "payload": entry.shrunk, "rerun": entry.rerun},
    )
