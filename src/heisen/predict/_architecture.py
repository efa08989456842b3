"""The architecture the swarm simulates, and the incident history that weighs its findings.

`architecture.yaml` names services (replicas, CPU limit, operations), the
resources they share (caches, databases, queues, other services) and a
workload (arrivals, traffic mix, key popularity, counter capacities). Each
operation is an ordered list of steps:

    read:   <resource>   key, as (the name the value is read into)
    write:  <resource>   key, op: set|increment|decrement|insert|delete, by, from
    check:  "<name> >= <amount>"   a condition on what was read (>=, >, <=, <, ==, !=)
    call:   <service>    a request to another service
    lock:   <resource>   key, timeout, scope: global|replica
    unlock: <resource>   key

and every step may carry `latency` (`2ms`, or one of `fixed`, `uniform {low,
high}`, `normal {mean, sd}`, `lognormal {median, sigma}`) and `cpu` (the CPU
time it costs its replica, e.g. `100us`).

`workload.sweep.capacity` (optional) gives the capacities stress's sweep
rounds start from when the sweep's own `setup:` leaves other ones (one
ticket, say); calibration uses it for the sweep's points.

Loading validates the whole file before returning and reports every problem
at once, each with its YAML path and line. What it returns is compiled: plain
frozen dataclasses, durations in seconds, references resolved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from heisen._yaml import YamlDocument, YamlPath, load_yaml_file
from heisen.errors import PipelineError, Problem, did_you_mean
from heisen.predict._architecture_spec import (
    SCHEMA_MODELS,
    ArchitectureSpec,
    IncidentSpec,
    KeySpaceSpec,
    LatencySpec,
    OperationSpec,
    StepSpec,
    WorkloadSpec,
)
from heisen.predict._errors import known_keys, translate
from heisen.predict._model import (
    STEP_KINDS,
    ZERO_LATENCY,
    Anomaly,
    Architecture,
    Arrivals,
    Check,
    Endpoint,
    Incident,
    KeySpace,
    Latency,
    Operation,
    Resource,
    Service,
    Step,
    StepKind,
    Workload,
)


@dataclass(frozen=True, slots=True)
class _Context:
    document: YamlDocument
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: YamlPath, message: str) -> None:
        self.problems.append(self.document.problem(path, message))


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CHECK = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*([A-Za-z_][A-Za-z0-9_]*|-?\d+)\s*$"
)
_ENDPOINT = re.compile(r"^\s*(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(/\S*)\s*$")
_ARROW = re.compile(r"\s*(?:→|->)\s*")


def placeholders(pattern: str) -> tuple[str, ...]:
    """The `{name}` placeholders of a key pattern, in order of first appearance."""
    return tuple(dict.fromkeys(_PLACEHOLDER.findall(pattern)))


def normalize_boundary(text: str) -> str:
    """`inventory->redis`, `inventory → redis` and `inventory -> redis` are the same boundary."""
    parts = _ARROW.split(text.strip())
    return " → ".join(part.strip() for part in parts)


def load_architecture(path: Path) -> Architecture:
    """Read, validate and compile `architecture.yaml`; raise `PipelineError` with every problem."""
    document = load_yaml_file(path)
    return parse_architecture(document)


def parse_architecture(document: YamlDocument) -> Architecture:
    if not isinstance(document.data, dict):
        raise PipelineError(
            document.source,
            [document.problem((), "expected a mapping with services, resources and workload")],
        )
    try:
        spec = ArchitectureSpec.model_validate(document.data)
    except ValidationError as exc:
        raise PipelineError(
            document.source, translate(exc, document, known_keys(SCHEMA_MODELS))
        ) from exc
    context = _Context(document)
    architecture = _compile(spec, context)
    if context.problems:
        raise PipelineError(document.source, context.problems)
    return architecture


def load_incidents(path: Path) -> tuple[Incident, ...]:
    """Read `incidents.yaml`: a list (or `incidents:` list) of past incidents per boundary."""
    document = load_yaml_file(path)
    return parse_incidents(document)


def parse_incidents(document: YamlDocument) -> tuple[Incident, ...]:
    data = document.data
    prefix: tuple[str | int, ...] = ()
    if data is None:
        return ()
    if isinstance(data, dict) and set(data) == {"incidents"}:
        data, prefix = data["incidents"], ("incidents",)
    if not isinstance(data, list):
        raise PipelineError(
            document.source,
            [document.problem((), "expected a list of incidents (boundary, count, severity, age)")],
        )
    problems: list[Problem] = []
    incidents: list[Incident] = []
    vocabulary = known_keys((IncidentSpec,))
    for index, item in enumerate(data):
        try:
            spec = IncidentSpec.model_validate(item)
        except ValidationError as exc:
            problems += translate(exc, document, vocabulary, prefix=(*prefix, index))
            continue
        incidents.append(
            Incident(
                boundary=normalize_boundary(spec.boundary),
                severity=spec.severity,
                age_s=spec.age,
                count=spec.count,
                anomaly=Anomaly(spec.anomaly) if spec.anomaly else None,
            )
        )
    if problems:
        raise PipelineError(document.source, problems)
    return tuple(incidents)


def _compile(spec: ArchitectureSpec, context: _Context) -> Architecture:
    resources = {name: Resource(name, item.kind) for name, item in spec.resources.items()}
    services: dict[str, Service] = {}
    operations: dict[str, Operation] = {}
    for service_name, service in spec.services.items():
        for op_name, op in service.operations.items():
            path: YamlPath = ("services", service_name, "operations", op_name)
            compiled = _compile_operation(service_name, op_name, op, path, spec, resources, context)
            operations[compiled.id] = compiled
        services[service_name] = Service(
            service_name, service.replicas, service.cpu, tuple(service.operations)
        )
    workload = _compile_workload(spec.workload, operations, context)
    return Architecture(services, resources, operations, workload, context.document.source)


def _compile_operation(
    service: str,
    name: str,
    spec: OperationSpec,
    path: YamlPath,
    arch: ArchitectureSpec,
    resources: Mapping[str, Resource],
    context: _Context,
) -> Operation:
    endpoint = None
    if spec.endpoint is not None:
        match = _ENDPOINT.match(spec.endpoint)
        if match is None:
            context.add(
                (*path, "endpoint"),
                f"{spec.endpoint!r} is not an endpoint: write it as 'POST /events/{{event}}/checkout'",
            )
        else:
            endpoint = Endpoint(match.group(1), match.group(2), spec.body)
    elif spec.body is not None:
        context.add((*path, "body"), "a body needs an endpoint to be sent to")
    body = spec.body or {}
    aliases: set[str] = set()
    held: list[tuple[str, str | None]] = []
    steps: list[Step] = []
    for index, step in enumerate(spec.steps):
        step_path: YamlPath = (*path, "steps", index)
        compiled = _compile_step(step, step_path, arch, resources, body, aliases, context)
        if compiled.kind is StepKind.READ and compiled.alias:
            aliases.add(compiled.alias)
        if compiled.kind is StepKind.LOCK:
            if held or any(step.kind is StepKind.LOCK for step in steps):
                context.add(
                    step_path, "an operation holds at most one lock section (lock ... unlock)"
                )
            held.append((compiled.target or "", compiled.key))
        if compiled.kind is StepKind.UNLOCK:
            if (compiled.target or "", compiled.key) not in held:
                context.add(
                    step_path,
                    f"unlock of {compiled.target} {compiled.key!r} that this operation does not hold",
                )
            else:
                held.remove((compiled.target or "", compiled.key))
        steps.append(compiled)
    for target, key in held:
        context.add((*path, "steps"), f"the lock on {target} {key!r} is never unlocked")
    return Operation(service, name, tuple(steps), endpoint)


def _compile_step(
    spec: StepSpec,
    path: YamlPath,
    arch: ArchitectureSpec,
    resources: Mapping[str, Resource],
    body: Mapping[str, Any],
    aliases: set[str],
    context: _Context,
) -> Step:
    kind = next(StepKind(name) for name in STEP_KINDS if getattr(spec, name) is not None)
    target: str = getattr(spec, kind.value)
    allowed = _ALLOWED[kind]
    for name in ("key", "as_", "op", "by", "from_", "timeout", "scope"):
        if getattr(spec, name) is not None and name not in allowed:
            shown = name.rstrip("_")
            context.add((*path, shown), f"{shown!r} has no meaning on a {kind.value} step")
    latency = _compile_latency(spec.latency, (*path, "latency"), context)
    if kind in (StepKind.READ, StepKind.WRITE, StepKind.LOCK, StepKind.UNLOCK):
        if target not in resources:
            context.add((*path, kind.value), _unknown("resource", target, resources))
        if spec.key is None:
            context.add(path, f'a {kind.value} step needs a key (e.g. key: "inventory:{{event}}")')
        else:
            for placeholder in placeholders(spec.key):
                if placeholder not in arch.workload.keys:
                    context.add(
                        (*path, "key"),
                        f"placeholder {{{placeholder}}} has no popularity under workload.keys",
                    )
    if kind is StepKind.CALL and target not in arch.services and target not in resources:
        context.add((*path, "call"), _unknown("service", target, {**arch.services, **resources}))
    check = None
    if kind is StepKind.CHECK:
        check = _compile_check(target, (*path, "check"), body, aliases, context)
    amount = 1
    if spec.by is not None:
        amount = _amount(spec.by, (*path, "by"), body, context)
    if spec.from_ is not None and spec.from_ not in aliases:
        context.add(
            (*path, "from"),
            f"{spec.from_!r} was not read by an earlier step (read ... as: {spec.from_})",
        )
    if kind is StepKind.WRITE and spec.op is None:
        context.add(path, "a write step needs op: set, increment, decrement, insert or delete")
    if kind is StepKind.READ and spec.as_ is None:
        alias = None
    else:
        alias = spec.as_
    return Step(
        kind=kind,
        target=None if kind is StepKind.CHECK else target,
        latency=latency,
        cpu_s=spec.cpu,
        key=spec.key,
        alias=alias,
        op=spec.op,
        amount=amount,
        source=spec.from_,
        check=check,
        timeout_s=spec.timeout if kind is StepKind.LOCK else None,
        scope=spec.scope or "global",
    )


_ALLOWED: dict[StepKind, set[str]] = {
    StepKind.READ: {"key", "as_"},
    StepKind.WRITE: {"key", "op", "by", "from_"},
    StepKind.CHECK: set(),
    StepKind.CALL: set(),
    StepKind.LOCK: {"key", "timeout", "scope"},
    StepKind.UNLOCK: {"key"},
}


def _unknown(what: str, name: str, known: Mapping[str, Any]) -> str:
    suffix = did_you_mean(name, sorted(known)) or f" (known: {', '.join(sorted(known)) or 'none'})"
    return f"unknown {what} {name!r}{suffix}"


def _compile_latency(spec: LatencySpec | None, path: YamlPath, context: _Context) -> Latency:
    if spec is None:
        return ZERO_LATENCY
    if spec.fixed is not None:
        return Latency("fixed", spec.fixed)
    if spec.uniform is not None:
        if spec.uniform.high < spec.uniform.low:
            context.add((*path, "uniform"), "high must not be below low")
        return Latency("uniform", spec.uniform.low, spec.uniform.high)
    if spec.normal is not None:
        return Latency("normal", spec.normal.mean, spec.normal.sd)
    assert spec.lognormal is not None
    if spec.lognormal.median <= 0:
        context.add((*path, "lognormal", "median"), "a lognormal median must be more than 0")
    return Latency("lognormal", spec.lognormal.median, spec.lognormal.sigma)


def _amount(value: int | str, path: YamlPath, body: Mapping[str, Any], context: _Context) -> int:
    if isinstance(value, int):
        return value
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value in body and isinstance(body[value], int) and not isinstance(body[value], bool):
        return int(body[value])
    context.add(
        path, f"{value!r} is neither an integer nor an integer field of the operation's body"
    )
    return 1


def _compile_check(
    text: str, path: YamlPath, body: Mapping[str, Any], aliases: set[str], context: _Context
) -> Check:
    match = _CHECK.match(text)
    if match is None:
        context.add(path, f"{text!r} is not a check: write it as 'available >= qty'")
        return Check("?", ">=", 0)
    name, operator, rhs = match.groups()
    if name not in aliases:
        context.add(path, f"{name!r} was not read by an earlier step (read ... as: {name})")
    return Check(name, operator, _amount(rhs, path, body, context))  # type: ignore[arg-type]


def _compile_workload(
    spec: WorkloadSpec, operations: Mapping[str, Operation], context: _Context
) -> Workload:
    burst, rate = spec.arrivals.burst, spec.arrivals.rate
    if burst is not None:
        arrivals = Arrivals("burst", burst.requests, window_s=burst.window)
    else:
        assert rate is not None
        arrivals = Arrivals("rate", rate.requests, per_s=rate.per_s)
    for op_id, weight in spec.mix.items():
        if op_id not in operations:
            context.add(
                ("workload", "mix", op_id),
                _unknown("operation", op_id, operations) + " (write service.operation)",
            )
        if weight < 0:
            context.add(("workload", "mix", op_id), "a weight cannot be negative")
    if sum(max(w, 0.0) for w in spec.mix.values()) <= 0:
        context.add(("workload", "mix"), "at least one operation needs a weight above 0")
    keys = {name: _key_space(item) for name, item in spec.keys.items()}
    written = {step.key for op in operations.values() for step in op.steps if step.key}
    sweep = spec.sweep.capacity if spec.sweep is not None else {}
    for where, capacities in (
        (("workload", "capacity"), spec.capacity),
        (("workload", "sweep", "capacity"), sweep),
    ):
        for pattern, value in capacities.items():
            if pattern not in written:
                context.add(
                    (*where, pattern), _unknown("key pattern", pattern, dict.fromkeys(written))
                )
            if value < 0:
                context.add((*where, pattern), "a capacity cannot be negative")
    return Workload(
        arrivals,
        dict(spec.mix),
        keys,
        dict(spec.capacity),
        {**spec.capacity, **sweep} if spec.sweep is not None else None,
    )


def _key_space(spec: KeySpaceSpec) -> KeySpace:
    if spec.zipf is not None:
        return KeySpace(spec.zipf.n, spec.zipf.s)
    assert spec.uniform is not None
    return KeySpace(spec.uniform)


def replace_operations(
    architecture: Architecture, change: Callable[[Operation], Operation]
) -> Architecture:
    """A copy of `architecture` with every operation passed through `change`."""
    return replace(
        architecture,
        operations={op_id: change(op) for op_id, op in architecture.operations.items()},
    )
