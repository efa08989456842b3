"""One trial's load: the pipeline's load steps, in sequence, against one address.

A burst runs in this process (its barrier only holds within one process).
Sustained models (inject, ramp_inject, constant) run here with `workers: 1`
and are spread over worker processes otherwise (`_workers`); the workers
render their own requests from the picklable `StepRequests`, and this process
re-renders the indices they sent so the history sees every request.
Request indices are unique over the steps of a trial, and so are connection
ids (the history's processes): each step's ids start above the last step's.

Every request a step attempts is counted where it is submitted, apart from
the records (`SendCount`), so `LoadOutcome.requests_sent` is a check on the
record keeping, not a restatement of it: `LoadOutcome.missing_records()`.

A burst speaks the protocol its requests ask for (`protocol:`; `auto` asks
the server once per process, `_protocol.negotiate`); the pipeline refuses a
burst whose requests ask for different ones, and so does `run_steps` for a
load it is handed directly. Each burst leaves a `BurstFacts`.

A step with `replica: n` goes straight to that replica's own address (from
`replicas`, index -> (host, port)), past the front proxy that would spread it
over all of them; its records say `replica=n`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from heisen.errors import UsageError
from heisen.schema import LoadStep, RequestTemplate
from heisen.stress._protocol import PROBE_TIMEOUT_S, Asked, Negotiated, resolve
from heisen.stress._records import RequestRecord, SendCount, missing_records
from heisen.stress._render import RequestFactory, StepRequests
from heisen.stress._tls import tls_client
from heisen.stress._tls_check import check_tls_accepted
from heisen.stress._workers import ModelSpec, resolve_workers, run_distributed, run_model

if TYPE_CHECKING:
    from heisen.system import TlsSettings

Workers = int | Literal["auto"]


@dataclass(frozen=True, slots=True)
class BurstFacts:
    """One burst step of a trial: `step` is its index in the load (from 0), `protocol` what
    it spoke and `reason` why (asked for, or what the probe saw), `release_spread_ms` the
    client's release-write window."""

    step: int
    requests: int
    connections: int
    protocol: str
    release_spread_ms: float
    early_responses: int = 0
    reason: str = "asked for"


@dataclass(frozen=True)
class LoadOutcome:
    """The records of one trial's load and what it takes to trust them.

    `requests_sent`: requests heisen attempted over all steps (refused and
    never-written ones included), counted apart from the records; it must
    equal `len(records)`. `early_responses`: burst requests answered before
    their release (0 against any server that needs the whole request head).
    """

    records: list[RequestRecord]
    release_spread_s: float | None
    requests_sent: int
    early_responses: int = 0
    bursts: tuple[BurstFacts, ...] = ()

    def missing_records(self) -> str | None:
        """None when every request sent has exactly one record, else the error to report."""
        return missing_records(self.records, self.requests_sent)


async def run_steps(
    steps: Sequence[LoadStep],
    factory: RequestFactory,
    *,
    host: str,
    port: int,
    templates: Mapping[str, RequestTemplate],
    timeout_s: float,
    workers: Workers = 1,
    replicas: Mapping[int, tuple[str, int]] | None = None,
    tls: TlsSettings | None = None,
) -> LoadOutcome:
    """Run `steps` in order; records of all of them, indices and connection ids unique.

    `host`, `port`: the service's front; `replicas`: each replica's own address,
    for the steps aimed at one (`replica:`); `tls`: how to speak TLS to them (None: plain).
    """
    from heisen.stress._burst import run_burst
    from heisen.stress._models import pause

    default = next(iter(templates))
    front = (host, port)
    processes = resolve_workers(workers)
    client = tls_client(tls)
    if client is not None:
        await check_tls_accepted(host, port, client)
    records: list[RequestRecord] = []
    spread: float | None = None
    early = 0
    bursts: list[BurstFacts] = []
    count = SendCount()
    index = 0
    connection_base = 0
    for number, step in enumerate(steps):
        if step.pause is not None:
            await pause(step.pause.during)
            continue
        make = factory.for_step(step, default, offset=index)
        host, port = aimed_address(number, step, front, replicas)
        if step.burst is not None:
            chosen = await burst_protocol(
                number,
                {name: templates[name].protocol for name in make.sequence},
                host,
                port,
                tls=tls,
            )
            requests = [make(i) for i in range(step.burst.requests)]
            count.requests += len(requests)
            result = await run_burst(
                host,
                port,
                requests,
                http2=chosen.protocol == "h2",
                timeout_s=timeout_s,
                connection_ids=itertools.count(connection_base + 1),
                tls=tls_client(tls, (chosen.protocol,)),
            )
            step_records = list(result.records)
            spread = max(spread or 0.0, result.release_spread_s)
            early += result.early_responses
            bursts.append(
                BurstFacts(
                    number,
                    len(requests),
                    result.connections,
                    result.protocol,
                    result.release_spread_s * 1000,
                    result.early_responses,
                    chosen.reason,
                )
            )
            step_sent = len(requests)
        else:
            spec = model_spec(step, make, host=host, port=port, timeout_s=timeout_s, tls=tls)
            step_count = SendCount()
            if processes == 1:
                step_records = await run_model(
                    spec, connection_id_base=connection_base, count=step_count
                )
            else:
                step_records = await run_distributed(
                    spec, processes, connection_id_base=connection_base, count=step_count
                )
                make.remember([record.index for record in step_records])
            count.requests += step_count.requests
            step_sent = step_count.requests if processes == 1 else 0
        if step.replica is not None:
            step_records = [replace(record, replica=step.replica) for record in step_records]
        records.extend(replace(record, index=record.index + index) for record in step_records)
        index += max(step_sent, max((record.index for record in step_records), default=-1) + 1)
        connection_base = max(
            connection_base, max((record.connection for record in step_records), default=0)
        )
    return LoadOutcome(records, spread, count.requests, early, tuple(bursts))


def aimed_address(
    number: int,
    step: LoadStep,
    front: tuple[str, int],
    replicas: Mapping[int, tuple[str, int]] | None,
) -> tuple[str, int]:
    """Where load step `number` sends: the front, or the replica it names."""
    if step.replica is None:
        return front
    if not replicas or step.replica not in replicas:
        known = ", ".join(str(index) for index in sorted(replicas or {})) or "none known"
        raise UsageError(
            f"load step {number}: replica: {step.replica}, but the service's replicas "
            f"are {known}; aim at one of them"
        )
    return replicas[step.replica]


async def burst_protocol(
    step: int,
    asked: Mapping[str, Asked],
    host: str,
    port: int,
    *,
    tls: TlsSettings | None = None,
) -> Negotiated:
    """The protocol of burst step `step`, whose requests ask for `asked` (name -> protocol);
    over TLS, "auto" offers both protocols in ALPN and takes the server's pick."""
    protocols = set(asked.values())
    if len(protocols) > 1:
        said = ", ".join(f"{name}: {protocol}" for name, protocol in asked.items())
        raise UsageError(
            f"load step {step}: a burst speaks one protocol, but its requests ask for several "
            f"({said}); give them the same protocol:, or burst them in separate steps"
        )
    client = tls_client(tls, ("h2", "http/1.1"))
    return await resolve(protocols.pop(), host, port, tls=client, timeout_s=PROBE_TIMEOUT_S)


def model_spec(
    step: LoadStep,
    make: StepRequests,
    *,
    host: str,
    port: int,
    timeout_s: float,
    tls: TlsSettings | None = None,
) -> ModelSpec:
    """The `ModelSpec` of a sustained load step."""
    if step.inject is not None:
        return ModelSpec(
            "inject",
            host,
            port,
            make,
            step.inject.during,
            rate_per_s=step.inject.rate,
            timeout_s=timeout_s,
            tls=tls,
        )
    if step.ramp_inject is not None:
        ramp = step.ramp_inject
        return ModelSpec(
            "ramp_inject",
            host,
            port,
            make,
            ramp.during,
            rate_per_s=ramp.from_rate,
            to_rate_per_s=ramp.to_rate,
            timeout_s=timeout_s,
            tls=tls,
        )
    if step.constant is not None:
        return ModelSpec(
            "constant",
            host,
            port,
            make,
            step.constant.during,
            copies=step.constant.copies,
            timeout_s=timeout_s,
            tls=tls,
        )
    raise AssertionError(f"{step.kind} is not a sustained model")
