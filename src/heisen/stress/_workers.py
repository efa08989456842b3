"""Spread one sustained load model over worker processes (`workers="auto"`).

Each worker is a fresh interpreter (multiprocessing "spawn": no inherited
event loop, sockets or locks) that runs the same model with its share of the
load: rate / N for open models, copies split as evenly as possible for the
closed model, `max_requests` split likewise. Request indices interleave
(worker w sends w, w+N, w+2N, …) so `make_request(i)` sees every index once,
and connection ids are offset per worker so that history processes stay
unique. Times are CLOCK_MONOTONIC, shared by all processes, so records merge
on one time line.

The workers start together: each one imports, reports ready, and waits for
one shared event before opening its connections. `make_request` must be
picklable (a module-level function or a `functools.partial` of one).

Each worker sends back its records (pickled whole: each keeps the local port
of its connection, by which the front proxy tells its replica) and the number
of requests it submitted (counted apart from the records, see `SendCount`); `count` adds them up, so
the caller can check that no record was lost on the way. A worker that dies
before sending them is an error (SystemUnavailable), never a short result.

A burst never goes through here: its barrier only holds within one process.
Cancelling `run_distributed` terminates the workers (SIGTERM) and joins them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING, Literal

from heisen.errors import HeisenError, SystemUnavailable, UsageError
from heisen.stress._models import MakeRequest, Sink, constant, inject, ramp_inject
from heisen.stress._records import RequestRecord, SendCount
from heisen.stress._tls import tls_client

if TYPE_CHECKING:
    from heisen.system import TlsSettings

_ID_STRIDE = 1_000_000
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One sustained model, in a form that can be sent to a worker process."""

    kind: Literal["inject", "ramp_inject", "constant"]
    host: str
    port: int
    make_request: MakeRequest
    during_s: float
    rate_per_s: float = 0.0
    to_rate_per_s: float = 0.0
    copies: int = 0
    max_requests: int | None = None
    max_connections: int = 256
    timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    tls: TlsSettings | None = None  # plain data: a worker builds its own SSL context


async def run_model(
    spec: ModelSpec,
    *,
    sink: Sink | None = None,
    index_start: int = 0,
    index_step: int = 1,
    connection_id_base: int = 0,
    count: SendCount | None = None,
) -> list[RequestRecord]:
    """Run `spec` in this process; `count` (if given) grows by the requests submitted."""
    tls = tls_client(spec.tls)
    if spec.kind == "inject":
        return await inject(
            spec.rate_per_s, spec.during_s, host=spec.host, port=spec.port,
            make_request=spec.make_request, max_requests=spec.max_requests,
            max_connections=spec.max_connections, timeout_s=spec.timeout_s,
            connect_timeout_s=spec.connect_timeout_s, sink=sink, index_start=index_start,
            index_step=index_step, connection_id_base=connection_id_base, count=count,
            tls=tls,
        )  # fmt: skip
    if spec.kind == "ramp_inject":
        return await ramp_inject(
            spec.rate_per_s, spec.to_rate_per_s, spec.during_s, host=spec.host, port=spec.port,
            make_request=spec.make_request, max_requests=spec.max_requests,
            max_connections=spec.max_connections, timeout_s=spec.timeout_s,
            connect_timeout_s=spec.connect_timeout_s, sink=sink, index_start=index_start,
            index_step=index_step, connection_id_base=connection_id_base, count=count,
            tls=tls,
        )  # fmt: skip
    return await constant(
        spec.copies, spec.during_s, host=spec.host, port=spec.port,
        make_request=spec.make_request, max_requests=spec.max_requests,
        timeout_s=spec.timeout_s, connect_timeout_s=spec.connect_timeout_s, sink=sink,
        index_start=index_start, index_step=index_step,
        connection_id_base=connection_id_base, count=count, tls=tls,
    )  # fmt: skip


def resolve_workers(workers: int | Literal["auto"]) -> int:
    """ "auto": half the CPUs this process may use (the other half is left to the
    system under test on a one-machine run), at least 1."""
    if workers == "auto":
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        return max(1, cpus // 2)
    if workers < 1:
        raise UsageError(f"workers must be 'auto' or a positive integer, got {workers}")
    return workers


def share(spec: ModelSpec, workers: int, worker: int) -> ModelSpec:
    """Worker `worker`'s part of `spec` (see the module docstring)."""

    def split(total: int) -> int:
        return total // workers + (1 if worker < total % workers else 0)

    return replace(
        spec,
        rate_per_s=spec.rate_per_s / workers,
        to_rate_per_s=spec.to_rate_per_s / workers,
        copies=split(spec.copies),
        max_requests=None if spec.max_requests is None else split(spec.max_requests),
        max_connections=max(1, spec.max_connections // workers),
    )


async def run_distributed(
    spec: ModelSpec,
    workers: int | Literal["auto"] = "auto",
    *,
    count: SendCount | None = None,
    connection_id_base: int = 0,
) -> list[RequestRecord]:
    """Run `spec` over `workers` processes; records of all of them, sorted by end time.

    Worker w's connection ids start above `connection_id_base + (w + 1) * 1_000_000`.
    """
    processes = resolve_workers(workers)
    if processes == 1:
        return await run_model(spec, count=count, connection_id_base=connection_id_base)
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = []
    pipes: list[Connection] = []
    try:
        for w in range(processes):
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker_main,
                args=(share(spec, processes, w), w, processes, connection_id_base, go, sender),
                name=f"heisen-stress-{w}",
                daemon=True,
            )
            proc.start()
            sender.close()
            procs.append(proc)
            pipes.append(receiver)
        for receiver in pipes:
            if not await asyncio.to_thread(receiver.poll, _START_TIMEOUT_S):
                raise SystemUnavailable("a load worker process did not start in 60 s")
            receiver.recv()  # "ready"
        go.set()
        results = await asyncio.gather(*(asyncio.to_thread(_receive, r) for r in pipes))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            await asyncio.to_thread(proc.join, 5.0)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join, 5.0)
        for receiver in pipes:
            receiver.close()
    records: list[RequestRecord] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        worker_records, submitted = result
        records.extend(worker_records)
        if count is not None:
            count.requests += submitted
    records.sort(key=lambda r: r.end_ns)
    return records


_Result = tuple[list[RequestRecord], int]


def _receive(receiver: Connection) -> _Result | BaseException:
    try:
        result: _Result | BaseException = receiver.recv()
    except EOFError:
        return SystemUnavailable("a load worker process died before sending its records")
    return result


def _worker_main(
    spec: ModelSpec, worker: int, processes: int, id_base: int, go: Event, sender: Connection
) -> None:
    sender.send("ready")
    go.wait(_START_TIMEOUT_S)
    count = SendCount()
    try:
        records = asyncio.run(
            run_model(
                spec,
                index_start=worker,
                index_step=processes,
                connection_id_base=id_base + (worker + 1) * _ID_STRIDE,
                count=count,
            )
        )
        sender.send((records, count.requests))
    except HeisenError as exc:
        sender.send(exc)
    finally:
        sender.close()
