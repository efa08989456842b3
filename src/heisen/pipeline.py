"""Loading the pipeline a user writes, with every problem located.

The types live in `heisen.schema` (and are re-exported here for callers of
this module).

`load_pipeline(path)` reads the YAML safely, validates it against the schema
(unknown keys, types, durations, quantities), then checks what a schema
cannot: files it references exist (relative to the pipeline file), templates
name things that exist, requests and links name real services and
dependencies, `python:` references import and bind. All problems are
collected and raised together as one `PipelineError`; nothing has started.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from heisen import _templates
from heisen._referenced import check_referenced_files
from heisen._yaml import YamlDocument, YamlPath, clipped, load_yaml_text, read_capped
from heisen.errors import PipelineError, Problem, did_you_mean
from heisen.oracle import check_python_ref  # static: validate imports nothing
from heisen.schema import (
    LOAD_PHASES,
    Acknowledged,
    ChaosSection,
    ContainSection,
    Dependency,
    DependencyKind,
    Experiment,
    FuzzSection,
    HttpCall,
    Invariant,
    IsolateSection,
    LoadedPipeline,
    LoadStep,
    Observe,
    PhaseName,
    Phases,
    Pipeline,
    PredictSection,
    Probe,
    RequestTemplate,
    Resources,
    Scenario,
    Service,
    SetupStep,
    StressSection,
    Sweep,
    Tls,
    Toxic,
    TrialsSection,
    limits,
    problems_from_validation,
    validate_partially,
)

__all__ = [
    "Acknowledged",
    "ChaosSection",
    "ContainSection",
    "Dependency",
    "DependencyKind",
    "Experiment",
    "FuzzSection",
    "HttpCall",
    "Invariant",
    "IsolateSection",
    "LoadStep",
    "LoadedPipeline",
    "PhaseName",
    "Phases",
    "Pipeline",
    "PredictSection",
    "Probe",
    "RequestTemplate",
    "Resources",
    "Scenario",
    "Service",
    "SetupStep",
    "StressSection",
    "Sweep",
    "Toxic",
    "TrialsSection",
    "load_pipeline",
]

_METHOD = re.compile(r"^[A-Za-z]{1,20}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
_PLACEHOLDERS = re.compile(r"\{\{.*?\}\}")
# Chaos experiments whose attributes are a toxic's, and the keys they take besides it.
_CHAOS_TOXICS = {
    "pod-network-latency": ("latency", {"toxicity", "stream"}),
    "pod-network-loss": ("timeout", {"loss", "stream"}),
    "reset-peer": ("reset_peer", {"toxicity", "stream"}),
}
_KUBERNETES_KEYS = {
    "destination_hosts",
    "destination_ips",
    "target_container",
    "network_interface",
    "service_account",
}
_TOXIC_MS_KEYS = {"latency", "jitter", "timeout"}
PYTHON_PROBE_KWARGS = frozenset({"deps", "services", "run_dir", "trial", "seed"})
# Where the entries other parts refer to by name live, and what messages call them.
NAMED_ENTRIES = {
    ("dependencies",): "dependency",
    ("services",): "service",
    ("scenario", "requests"): "request",
}


def load_pipeline(path: Path) -> LoadedPipeline:
    path = Path(path)
    raw = read_capped(path)
    document = load_yaml_text(raw, source=str(path))
    if not isinstance(document.data, dict):
        raise PipelineError(
            str(path),
            [Problem("", "a pipeline is a YAML mapping (apiVersion, services, scenario, ...)")],
        )
    try:
        pipeline = Pipeline.model_validate(document.data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, document, Pipeline)
        partial = validate_partially(document.data, Pipeline.model_validate, NAMED_ENTRIES)
        if partial is not None:
            model, mending = partial
            checked = _Checker(model, document, path.parent).problems()
            problems += [problem for problem in checked if not mending.hides(problem)]
        problems.sort(key=lambda problem: problem.line or 0)
        raise PipelineError(str(path), problems) from None
    problems = _Checker(pipeline, document, path.parent).problems()
    if problems:
        raise PipelineError(str(path), problems)
    digest = hashlib.sha256(raw).hexdigest()
    return LoadedPipeline(pipeline=pipeline, path=path.resolve(), sha256=digest, raw=document.data)


PROBE_VARIABLES: dict[str, frozenset[str]] = {
    "http": frozenset({"status", "body", "headers", "load"}),
    "redis": frozenset({"value", "load"}),
}
"""What `expect:` can read from the probes whose variables are known before they run."""
SQL_PROBE_EXTRAS = frozenset({"rows", "rowcount", "load"})


def sql_probe_variables(query: str) -> frozenset[str] | None:
    """The names an `sql:` probe gives (its first row's columns, rows, rowcount, load), when the
    query's select list names every column (no `*`, no unnamed expression); else None."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(query, read="postgres")
    except sqlglot.errors.SqlglotError:
        return None  # PostgreSQL will say what is wrong with it at run time
    if not isinstance(tree, exp.Select):
        return None
    names = set()
    for item in tree.selects:
        if not isinstance(item, exp.Alias | exp.Column) or isinstance(item.this, exp.Star):
            return None
        identifier = item.args.get("alias") if isinstance(item, exp.Alias) else item.this
        quoted = isinstance(identifier, exp.Identifier) and identifier.quoted
        names.add(item.alias_or_name if quoted else item.alias_or_name.lower())
    return frozenset(names) | SQL_PROBE_EXTRAS


NameTree = Mapping[str, "NameTree | None"]
"""The names a template may use, each mapped to the names below it (`{}`: nothing below, None:
anything): what `_templates.check_names` checks placeholders against."""

LOAD_REFERENCE = re.compile(r"(?<![\w.])load\.([A-Za-z_]\w*)")


class _Checker:
    """The checks a schema cannot express, each reported at its YAML path."""

    def __init__(self, pipeline: Pipeline, document: YamlDocument, base_dir: Path) -> None:
        self.pipeline = pipeline
        self.document = document
        self.base_dir = base_dir
        self.found: list[Problem] = []

    def problems(self) -> list[Problem]:
        p = self.pipeline
        for name, dep in p.dependencies.items():
            self._check_dependency(name, dep)
        for name, service in p.services.items():
            self._check_service(name, service)
        self._check_scenario(p.scenario)
        for index, invariant in enumerate(p.invariants):
            self._check_invariant(("invariants", index), invariant)
        self._check_phases(p.phases)
        if p.target is not None:
            names = [invariant.name for invariant in p.invariants]
            if p.target not in names:
                self.add(
                    ("target",),
                    f"no invariant named {p.target!r} (invariants: {', '.join(names) or 'none'})"
                    f"{did_you_mean(p.target, names)}",
                )
        self.found += check_referenced_files(p, self.document, self.base_dir)
        return self.found

    def add(self, path: YamlPath, message: str) -> None:
        self.found.append(self.document.problem(path, message))

    def _file(self, path: YamlPath, relative: str, *, directory: bool = False) -> None:
        target = self.base_dir / relative
        try:
            found = target.is_dir() if directory else target.is_file()
        except OSError as error:  # a name too long for the file system, say
            shown = relative if len(relative) <= 80 else f"{relative[:80]}..."
            self.add(path, f"cannot look for {shown}: {error.strerror or error}")
            return
        if not found:
            kind = "directory" if directory else "file"
            self.add(path, f"no such {kind}: {relative} (looked in {self.base_dir})")

    def _service_roots(self) -> NameTree:
        # {} is a value with nothing below it: `{{ seed.x }}` names nothing
        deps: NameTree = {
            name: {"dsn": {}, "url": {}, "host": {}, "port": {}}
            for name in self.pipeline.dependencies
        }
        services: NameTree = {
            name: {"url": {}, "host": {}, "port": {}} for name in self.pipeline.services
        }
        return {
            "deps": deps,
            "services": services,
            "python": {},
            "run_dir": {},
            "seed": {},
            "replica": {},
        }

    def _request_roots(self) -> NameTree:
        return {
            "faker": _templates.FakerProviders(),
            "i": {},
            "trial": {},
            "seed": {},
            "run_id": {},
        }

    def _templates(self, path: YamlPath, value: object, roots: NameTree) -> None:
        if isinstance(value, str):
            for message in _templates.check_names(value, roots):
                self.add(path, message)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._templates((*path, index), item, roots)
        elif isinstance(value, dict):
            for key, item in value.items():
                self._templates((*path, key), item, roots)

    def _check_dependency(self, name: str, dep: Dependency) -> None:
        path: YamlPath = ("dependencies", name)
        if dep.init:
            self._file((*path, "init"), dep.init)
        if dep.stub:
            self._file((*path, "stub"), dep.stub, directory=True)
        if dep.command:
            self._templates((*path, "command"), dep.command, self._service_roots())
        self._templates((*path, "env"), dep.env, self._service_roots())
        self._check_reach(path, {"dsn": dep.dsn, "url": dep.url})
        self._check_tls((*path, "tls"), dep.tls)

    def _check_service(self, name: str, service: Service) -> None:
        path: YamlPath = ("services", name)
        roots = self._service_roots()
        if service.command:
            self._templates((*path, "command"), service.command, roots)
        self._templates((*path, "env"), service.env, roots)
        if service.cwd:
            self._file((*path, "cwd"), service.cwd, directory=True)
        if service.stub:
            self._file((*path, "stub"), service.stub, directory=True)
        self._check_reach(path, {"url": service.url})
        self._check_tls((*path, "tls"), service.tls)

    def _check_tls(self, path: YamlPath, tls: Tls | None) -> None:
        """The files a `tls:` names exist (relative to the pipeline file)."""
        for key in ("ca", "cert", "key"):
            relative = getattr(tls, key) if tls is not None else None
            if relative is not None:
                self._file((*path, key), relative)

    def _check_reach(self, path: YamlPath, addresses: dict[str, str | None]) -> None:
        """The loopback rule (system._addresses) on each address; stubs: _referenced."""
        from heisen.system import loopback_problems

        for key, address in addresses.items():
            for message in loopback_problems(address, self.pipeline.allow_hosts) if address else []:
                self.add((*path, key), message)

    def _check_call(self, path: YamlPath, call: HttpCall, roots: NameTree) -> None:
        if call.service is not None and call.service not in self.pipeline.services:
            self.add(
                (*path, "service"),
                f"no service named {call.service!r} (services: {', '.join(self.pipeline.services)})",
            )
        if not call.path.startswith("/"):
            self.add((*path, "path"), f"a path starts with '/': {clipped(call.path)}")
        if not _METHOD.match(call.method):
            self.add(
                (*path, "method"), f"{clipped(call.method)} is not an HTTP method (GET, POST, ...)"
            )
        outside = _PLACEHOLDERS.sub("", call.path)
        if any(c.isspace() for c in outside):
            self.add((*path, "path"), f"a path has no spaces or line breaks: {clipped(call.path)}")
        for name, header in call.headers.items():
            if not _HEADER_NAME.match(name):
                self.add((*path, "headers", name), f"{clipped(name)} is not a header name")
            elif "\r" in header or "\n" in header:
                self.add((*path, "headers", name), "a header value has no line breaks")
        for part, value in (
            ("path", call.path),
            ("headers", call.headers),
            ("json", call.json_body),
            ("body", call.body),
        ):
            self._templates((*path, part), value, roots)

    def _check_target(self, path: YamlPath, on: str | None, kind: DependencyKind) -> None:
        deps = {name for name, dep in self.pipeline.dependencies.items() if dep.kind == kind}
        if on is None:
            if len(deps) != 1:
                self.add(path, f"say which {kind.value} dependency with on: (found {len(deps)})")
        elif on not in deps:
            self.add(
                (*path, "on"),
                f"no {kind.value} dependency named {on!r} (known: {', '.join(sorted(deps)) or 'none'})",
            )

    def _check_setup_step(self, path: YamlPath, step: SetupStep) -> None:
        if step.http:
            self._check_call((*path, "http"), step.http, self._request_roots())
        if step.sql is not None:
            self._check_target(path, step.on, DependencyKind.POSTGRES)
        if step.redis is not None:
            self._check_target(path, step.on, DependencyKind.REDIS)

    def _check_scenario(self, scenario: Scenario) -> None:
        for index, step in enumerate(scenario.setup):
            self._check_setup_step(("scenario", "setup", index), step)
        if not scenario.requests:
            self.add(("scenario", "requests"), "name at least one request")
        for name, request in scenario.requests.items():
            self._check_call(("scenario", "requests", name), request, self._request_roots())
            if request.history and request.history.value:
                if not request.history.value.startswith(("request.", "response.")):
                    self.add(
                        ("scenario", "requests", name, "history", "value"),
                        "write where the value is: request.<field> or response.<field>",
                    )
        self._check_load(("scenario", "load"), scenario.load)

    def _check_load(self, path: YamlPath, load: list[LoadStep]) -> None:
        if not load:
            self.add(path, "give at least one load step (burst:, inject:, constant:, ...)")
        requests = self.pipeline.scenario.requests
        for index, step in enumerate(load):
            model = getattr(step, step.kind)
            if step.replica is not None:
                self._check_replica((*path, index, "replica"), step.replica)
            if step.kind == "pause":
                continue
            names = model.request_names()
            if step.burst is not None:
                self._check_one_protocol((*path, index, "burst"), names or [next(iter(requests))])
            if step.burst is not None:  # here, not in Burst: a sweep builds smaller bursts
                for name, share in step.burst.shares().items():
                    if step.burst.requests * share < 1:
                        self.add(
                            (*path, index, "burst"),
                            f"a burst of {step.burst.requests} would send {name!r} ({share:.0%} "
                            f"of the mix) less than once: give the burst at least "
                            f"{math.ceil(1 / share)} requests",
                        )
            if not names and len(requests) > 1:
                self.add(
                    (*path, index, step.kind),
                    f"say which request with request: or mix: (one of {', '.join(requests)})",
                )
            for name in names:
                if name not in requests:
                    where = "mix" if model.mix else "request"
                    self.add(
                        (*path, index, step.kind, where),
                        f"no request named {name!r} (requests: {', '.join(requests)})",
                    )

    def _check_replica(self, path: YamlPath, replica: int) -> None:
        """A step's `replica:` names one of the replicas of the service the load goes to."""
        if not self.pipeline.services:
            return
        name, service = next(iter(self.pipeline.services.items()))
        if service.url is not None:
            self.add(
                path,
                f"replica: sends straight to a replica heisen starts, but service {name!r} "
                "is already running at url:; drop replica: or give the service command:",
            )
        elif replica >= service.replicas:
            self.add(
                path,
                f"service {name!r} has {service.replicas} "
                f"replica{'s' if service.replicas != 1 else ''} (replica: 0"
                f"{f' to {service.replicas - 1}' if service.replicas > 1 else ''}); "
                f"there is no replica {replica}",
            )

    def _check_one_protocol(self, path: YamlPath, names: list[str]) -> None:
        requests = self.pipeline.scenario.requests
        protocols = {name: requests[name].protocol for name in names if name in requests}
        if len(set(protocols.values())) > 1:
            said = ", ".join(f"{name}: {protocol}" for name, protocol in protocols.items())
            self.add(
                path,
                f"a burst speaks one protocol, but its requests ask for several ({said}); "
                "give them the same protocol:, or burst them in separate steps",
            )

    def _check_invariant(self, path: YamlPath, invariant: Invariant) -> None:
        from heisen.oracle.expr import ExpressionError, parse_expression

        for key in ("expect", "severity"):
            text = getattr(invariant, key)
            if not text:
                continue
            try:
                expression = parse_expression(text)
            except ExpressionError as exc:
                self.add((*path, key), f"bad expression: {exc}")
            else:
                self._check_expect_names((*path, key), invariant, text, expression.names)
        if invariant.sql is not None:
            self._check_target(path, invariant.on, DependencyKind.POSTGRES)
        if invariant.redis is not None:
            self._check_target(path, invariant.on, DependencyKind.REDIS)
        if invariant.http is not None:
            self._check_call((*path, "http"), invariant.http, self._request_roots())
        if invariant.python is not None:
            message = check_python_ref(invariant.python, PYTHON_PROBE_KWARGS, self.base_dir)
            if message:
                self.add((*path, "python"), message)
        if invariant.acknowledged is not None:
            ack = invariant.acknowledged
            if ack.request not in self.pipeline.scenario.requests:
                self.add((*path, "acknowledged", "request"), f"no request named {ack.request!r}")
            self._check_target((*path, "acknowledged"), ack.on, DependencyKind.POSTGRES)
        if invariant.history is not None:
            recorded = [n for n, r in self.pipeline.scenario.requests.items() if r.history]
            if not recorded:
                self.add(
                    (*path, "history"),
                    "no request of the scenario has history: (f, key, value) to record",
                )

    def _check_expect_names(
        self, path: YamlPath, invariant: Invariant, text: str, names: frozenset[str]
    ) -> None:
        """Names an `expect:` (or a `severity:`, which reads the same variables) can never be
        given: probes whose variables are known in advance, and `load.<request>` for a request
        the scenario does not have."""
        kind = next((k for k in PROBE_VARIABLES if getattr(invariant, k) is not None), None)
        given = PROBE_VARIABLES.get(kind) if kind else None
        if invariant.sql is not None:
            kind, given = "sql", sql_probe_variables(invariant.sql)
        if kind is not None and given is not None:
            for name in sorted(names - given):
                hint = did_you_mean(name, given)
                self.add(
                    path,
                    f"{name!r} is not a variable of a {kind}: probe (it gives "
                    f"{', '.join(sorted(given))}){hint}",
                )
        requests = [*self.pipeline.scenario.requests, "total"]
        for request in LOAD_REFERENCE.findall(text):
            if request not in requests:
                self.add(
                    path,
                    f"load.{request}: the scenario has no request named {request!r} "
                    f"(load. names one of {', '.join(requests)}){did_you_mean(request, requests)}",
                )

    def _check_observed_requests(self, observe: Observe | None) -> None:
        requests = list(self.pipeline.scenario.requests)
        for i, request in enumerate(observe.requests or () if observe else ()):
            if request not in requests:
                self.add(
                    ("phases", "predict", "observe", "requests", i),
                    f"the scenario has no request named {request!r} (requests: "
                    f"{', '.join(requests)}){did_you_mean(request, requests)}",
                )

    def _check_phases(self, phases: Phases) -> None:
        if phases.predict:
            if phases.predict.architecture:
                self._file(("phases", "predict", "architecture"), phases.predict.architecture)
            self._check_observed_requests(phases.predict.observe)
            if phases.predict.incidents:
                self._file(("phases", "predict", "incidents"), phases.predict.incidents)
        names = [invariant.name for invariant in self.pipeline.invariants]
        for phase in LOAD_PHASES:
            section = getattr(phases, phase)
            if phase != PhaseName.CHAOS and section and section.load is not None:
                self._check_load(("phases", phase, "load"), section.load)
            for index, chosen in enumerate((section.invariants or []) if section else []):
                if chosen not in names:
                    self.add(
                        ("phases", phase, "invariants", index),
                        f"no invariant named {chosen!r}{did_you_mean(chosen, names)}",
                    )
        for phase in (PhaseName.STRESS, PhaseName.ISOLATE, PhaseName.CONTAIN):
            self._check_sweep(phase)
        if phases.fuzz:
            if phases.fuzz.openapi:
                self._file(("phases", "fuzz", "openapi"), phases.fuzz.openapi)
            if phases.fuzz.request and phases.fuzz.request not in self.pipeline.scenario.requests:
                self.add(("phases", "fuzz", "request"), f"no request named {phases.fuzz.request!r}")
        if phases.isolate:
            for index, stub in enumerate(phases.isolate.stubs):
                owner = self.pipeline.dependencies.get(stub) or self.pipeline.services.get(stub)
                if owner is None or not owner.stub:
                    self.add(
                        ("phases", "isolate", "stubs", index),
                        f"{stub!r} names no dependency or service with a stub: root",
                    )
            for index, toxic in enumerate(phases.isolate.toxics):
                toxic_path: YamlPath = ("phases", "isolate", "toxics", index)
                self._check_link((*toxic_path, "link"), toxic.link)
                self._check_toxic((*toxic_path, "attributes"), toxic.type, toxic.attributes)
        if phases.contain:
            for service in phases.contain.resources:
                if service not in self.pipeline.services:
                    self.add(
                        ("phases", "contain", "resources", service), f"no service named {service!r}"
                    )
        if phases.chaos:
            self._check_chaos(phases.chaos)

    def _check_sweep(self, phase: PhaseName) -> None:
        section = getattr(self.pipeline.phases, phase)
        if section is None or section.sweep is None:
            return
        path: YamlPath = ("phases", phase, "sweep")
        requests = self.pipeline.scenario.requests
        sweep = section.sweep
        if sweep.request is not None and sweep.request not in requests:
            self.add(
                (*path, "request"),
                f"no request named {sweep.request!r} (requests: {', '.join(requests)})"
                f"{did_you_mean(sweep.request, list(requests))}",
            )
        elif sweep.step(sweep.start, section.load or self.pipeline.scenario.load, requests) is None:
            self.add(
                path,
                f"say which request each burst sends with request: (one of {', '.join(requests)}); "
                "the load has no burst: step to copy",
            )
        for index, step in enumerate(sweep.setup or []):
            self._check_setup_step((*path, "setup", index), step)

    def _check_link(self, path: YamlPath, link: str) -> None:
        source, sep, target = link.partition("->")
        source, target = source.strip(), target.strip()
        if (
            not sep
            or source not in self.pipeline.services
            or not (target in self.pipeline.dependencies or target in self.pipeline.services)
        ):
            links = [
                f"{s}->{d}"
                for s in self.pipeline.services
                for d in (*self.pipeline.dependencies, *self.pipeline.services)
                if s != d
            ]
            self.add(
                path, f"{link!r} is not a link; links are service->dependency: {', '.join(links)}"
            )

    def _check_toxic(self, path: YamlPath, kind: str, attributes: Mapping[str, object]) -> None:
        """A toxic's attributes as the proxy will read them, with times bounded."""
        from heisen.system import ATTRIBUTE_MODELS, ToxicType

        model = ATTRIBUTE_MODELS[ToxicType(kind)]
        try:
            model.model_validate(attributes)
        except ValidationError as exc:
            for item in exc.errors():
                where = tuple(str(part) for part in item["loc"])
                allowed = ", ".join(sorted(model.model_fields))
                message = item["msg"].removeprefix("Value error, ")
                if item["type"] == "extra_forbidden":
                    message = f"a {kind} toxic has no attribute {where[-1]!r} (it takes {allowed})"
                self.add((*path, *where), message)
            return
        for key, value in attributes.items():
            if key in _TOXIC_MS_KEYS or key.endswith("_ms"):
                self._check_number((*path, key), value, key)

    def _check_number(self, path: YamlPath, value: Any, key: str, *, stream: bool = False) -> None:
        if stream and key == "stream":
            if value not in ("upstream", "downstream"):
                self.add(path, f"stream is upstream or downstream, not {value!r}")
            return
        bounds = {"toxicity": limits.FRACTION, "loss": limits.PERCENTAGE}.get(key, limits.TOXIC_MS)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"{key} is a number, not {value!r}")
            return
        try:
            bounds.check(value if math.isfinite(value) else float("inf"))
        except ValueError as exc:
            self.add(path, f"{key}: {exc}")

    def _check_chaos(self, chaos: ChaosSection) -> None:
        names = {inv.name for inv in self.pipeline.invariants}
        for index, experiment in enumerate(chaos.experiments):
            path: YamlPath = ("phases", "chaos", "experiments", index)
            if experiment.kind in ("pod-delete", "container-kill", "pod-cpu-hog"):
                if experiment.service is None and len(self.pipeline.services) != 1:
                    self.add(path, f"{experiment.kind} needs service:")
                elif (
                    experiment.service is not None
                    and experiment.service not in self.pipeline.services
                ):
                    self.add((*path, "service"), f"no service named {experiment.service!r}")
            elif experiment.kind == "dependency-restart":
                if experiment.dependency not in self.pipeline.dependencies:
                    self.add(
                        (*path, "dependency"),
                        f"{experiment.kind} needs dependency: one of {', '.join(self.pipeline.dependencies)}",
                    )
            elif experiment.link is None:
                self.add(path, f"{experiment.kind} needs link: (service->dependency)")
            else:
                self._check_link((*path, "link"), experiment.link)
            if experiment.kind in _CHAOS_TOXICS:
                toxic, extra = _CHAOS_TOXICS[experiment.kind]
                attributes = {
                    key: value
                    for key, value in experiment.attributes.items()
                    if key not in extra and key not in _KUBERNETES_KEYS
                }
                for key in sorted(extra & set(experiment.attributes)):
                    self._check_number(
                        (*path, "attributes", key), experiment.attributes[key], key, stream=True
                    )
                self._check_toxic((*path, "attributes"), toxic, attributes)
        for index, probe in enumerate(chaos.probes):
            if probe.invariant is not None and probe.invariant not in names:
                self.add(
                    ("phases", "chaos", "probes", index, "invariant"),
                    f"no invariant named {probe.invariant!r}",
                )
