"""The observation pass: send each scenario request alone and read what it did to its dependencies.

With every link tapped (`System.tap_links`, which restarts the replicas so
their pools reconnect through the tap), the pass sends each observed request
once to warm the new connections (not counted: a first send pays for
connecting, and its windows would be the slowest), runs the scenario's
setup, then sends each observed request `repeat` times, one at a time, and charges
to it the dependency operations that started between its send and its
response, on any link; the replica that served it comes from the service's
front proxy. An operation that started while no request was in flight is
background work (a sweeper, a cache flush, a fire-and-forget write after the
response). The taps stop before the pass returns, on every path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from heisen.errors import SystemUnavailable, UsageError
from heisen.phase import PhaseContext
from heisen.schema import Observe, RequestTemplate
from heisen.stress import HttpRequest, RequestFactory, RequestRecord, run_burst, tls_client
from heisen.system import TlsSettings
from heisen.system_protocol import DependencyOperation

SETTLE_S = 0.05
"""Quiet time after each response, so that work a request leaves behind is seen as background."""


@dataclass(frozen=True, slots=True)
class ObservedRequest:
    """One send of a scenario request and the dependency operations it caused."""

    name: str
    method: str
    path: str
    attempt: int
    start: float
    end: float
    status: int | None
    replica: int | None
    operations: tuple[DependencyOperation, ...]


@dataclass(slots=True)
class Observation:
    requests: list[ObservedRequest] = field(default_factory=list)
    background: list[DependencyOperation] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    """{link: protocol} of the links that were read."""
    lost: dict[str, int] = field(default_factory=dict)
    """Connections a tap stopped following, by reason (TLS, a protocol it could not read)."""
    elapsed_s: float = 0.0

    def of(self, name: str) -> list[ObservedRequest]:
        return [request for request in self.requests if request.name == name]


def observe(ctx: PhaseContext, spec: Observe) -> Observation:
    """Run the pass over `ctx.system` (see the module docstring)."""
    from heisen.oracle.pipeline_invariants import run_setup
    from heisen.system import service_tls

    system = ctx.system
    if system is None:
        raise UsageError("predict observes a running system, and none was started")
    pipeline = ctx.pipeline
    names = spec.requests or list(pipeline.scenario.requests)
    started = time.monotonic()
    observation = Observation()
    services = {name: pipeline.target_service(pipeline.scenario.requests[name]) for name in names}
    try:
        observation.links = system.tap_links()
        factory = RequestFactory(
            pipeline.scenario.requests, trial=0, seed=ctx.seed, run_id=ctx.manifest.run.id
        )
        addresses = {name: system.service_address(services[name]) for name in names}
        tls = {name: service_tls(pipeline, services[name], ctx.loaded.base_dir) for name in names}
        index = 0
        for name in names:
            _send_alone(*addresses[name], factory.render(name, index), tls[name])
            index += 1
        run_setup(pipeline, system)
        cursors = {link: system.link_operations(link)[0] for link in observation.links}
        sends: list[tuple[str, int, RequestRecord]] = []
        for name in names:
            for attempt in range(spec.repeat):
                record = _send_alone(*addresses[name], factory.render(name, index), tls[name])
                index += 1
                sends.append((name, attempt, record))
                time.sleep(SETTLE_S)
        replicas = {service: system.replica_of_peers(service) for service in set(services.values())}
        operations: list[DependencyOperation] = []
        for link, since in cursors.items():
            operations += system.link_operations(link, since)[1]
            for reason, count in system.link_tap_lost(link).items():
                observation.lost[reason] = observation.lost.get(reason, 0) + count
    finally:
        system.untap_links()
    operations.sort(key=lambda operation: operation.start)
    _attribute(observation, sends, operations, replicas, services, pipeline.scenario.requests)
    observation.elapsed_s = time.monotonic() - started
    return observation


def _send_alone(
    host: str, port: int, request: HttpRequest, tls: TlsSettings | None
) -> RequestRecord:
    client = tls_client(tls)
    result = asyncio.run(run_burst(host, port, [request], settle_s=0.0, tls=client))
    record = result.records[0]
    if record.sent_ns is None:
        raise SystemUnavailable(
            f"predict could not send {record.method} {record.path} to observe it: {record.error}"
        )
    return record


def _attribute(
    observation: Observation,
    sends: Sequence[tuple[str, int, RequestRecord]],
    operations: Sequence[DependencyOperation],
    replicas: Mapping[str, Mapping[int, int]],
    services: Mapping[str, str],
    templates: Mapping[str, RequestTemplate],
) -> None:
    """Charge each operation to the send in flight when it started, else to the background."""
    windows = [
        ((record.sent_ns or record.end_ns) / 1e9, record.end_ns / 1e9, name, attempt, record)
        for name, attempt, record in sends
    ]
    charged: list[list[DependencyOperation]] = [[] for _ in windows]
    for operation in operations:
        for i, (start, end, *_rest) in enumerate(windows):
            if start <= operation.start <= end:
                charged[i].append(operation)
                break
        else:
            observation.background.append(operation)
    for (start, end, name, attempt, record), mine in zip(windows, charged, strict=True):
        template = templates[name]
        observation.requests.append(
            ObservedRequest(
                name=name,
                method=template.method.upper(),
                path=template.path,
                attempt=attempt,
                start=start,
                end=end,
                status=record.status,
                replica=replicas[services[name]].get(record.local_port)
                if record.local_port
                else None,
                operations=tuple(mine),
            )
        )
