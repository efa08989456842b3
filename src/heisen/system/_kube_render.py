"""Kubernetes objects for the system under test: what `contain` applies to a cluster.

`render()` turns heisen's view of the system (services with replicas, CPU
and memory limits, a health path; PostgreSQL and Redis to run in-cluster)
into plain dicts: one Namespace, then per dependency and per service a
Deployment and a Service. Every object carries the caller's labels, so chaos
and cleanup can select exactly what heisen created. The dicts are checked
against the official client's models (deserialized and serialized back: a
missing required field fails the first step, a misspelt key the second),
and `render_yaml()` gives the same objects as a multi-document YAML stream
that `kubectl apply -f -` accepts.

Limits are set as both requests and limits (Guaranteed QoS): the kubelet
turns `limits.cpu: 250m` into a CFS quota of 25,000 µs per 100,000 µs period.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from heisen._serialised import JsonObject
from heisen._units import parse_cpu, parse_memory
from heisen.errors import UsageError

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "heisen"}
_KINDS = {
    "Namespace": "V1Namespace",
    "Deployment": "V1Deployment",
    "Service": "V1Service",
}


@dataclass(frozen=True, slots=True)
class KubeService:
    """A service heisen runs as a Deployment of `replicas` pods behind a Service."""

    name: str
    image: str
    replicas: int
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cpu: str | None = None
    memory: str | None = None
    health_path: str = "/health"
    command: list[str] | None = None


@dataclass(frozen=True, slots=True)
class KubeDependency:
    """PostgreSQL or Redis run in the cluster for the services to use."""

    name: str
    kind: str  # "postgres" | "redis"
    image: str | None = None

    def port(self) -> int:
        return 5432 if self.kind == "postgres" else 6379

    def url(self, namespace: str) -> str:
        """How pods in `namespace` reach it."""
        host = f"{self.name}.{namespace}.svc"
        if self.kind == "postgres":
            return f"postgresql://heisen:heisen@{host}:5432/heisen"
        return f"redis://{host}:6379/0"


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DEFAULT_IMAGES = {"postgres": "postgres:16-alpine", "redis": "redis:7-alpine"}


def _metadata(name: str, namespace: str, labels: Mapping[str, str]) -> JsonObject:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def _resources(cpu: str | None, memory: str | None) -> JsonObject:
    quantities: dict[str, str] = {}
    if cpu is not None:
        parse_cpu(cpu)  # raises ValueError on a bad quantity
        quantities["cpu"] = cpu
    if memory is not None:
        parse_memory(memory)
        quantities["memory"] = memory
    return {"requests": dict(quantities), "limits": dict(quantities)} if quantities else {}


def _deployment(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    replicas: int,
    container: JsonObject,
) -> JsonObject:
    selector = {**labels, NAME_LABEL: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace, selector),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": {"labels": dict(selector)},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 5},
            },
        },
    }


def _service(name: str, namespace: str, labels: Mapping[str, str], port: int) -> JsonObject:
    selector = {**labels, NAME_LABEL: name}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, selector),
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "main", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def _service_container(service: KubeService) -> JsonObject:
    env = {"PORT": str(service.port), **service.env}
    probe = {"httpGet": {"path": service.health_path, "port": service.port}, "timeoutSeconds": 2}
    container: JsonObject = {
        "name": service.name,
        "image": service.image,
        "ports": [{"containerPort": service.port, "protocol": "TCP"}],
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "readinessProbe": {**probe, "periodSeconds": 2, "failureThreshold": 3},
        "livenessProbe": {
            **probe,
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
    }
    if service.command:
        container["command"] = list(service.command)
    resources = _resources(service.cpu, service.memory)
    if resources:
        container["resources"] = resources
    return container


def _dependency_container(dependency: KubeDependency) -> JsonObject:
    port = dependency.port()
    container: JsonObject = {
        "name": dependency.name,
        "image": dependency.image or _DEFAULT_IMAGES[dependency.kind],
        "ports": [{"containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2},
    }
    if dependency.kind == "postgres":
        container["env"] = [
            {"name": "POSTGRES_USER", "value": "heisen"},
            {"name": "POSTGRES_PASSWORD", "value": "heisen"},
            {"name": "POSTGRES_DB", "value": "heisen"},
        ]
        container["readinessProbe"] = {
            "exec": {"command": ["pg_isready", "-U", "heisen", "-d", "heisen"]},
            "periodSeconds": 2,
        }
    return container


def render(
    namespace: str,
    services: Sequence[KubeService],
    dependencies: Sequence[KubeDependency] = (),
    labels: Mapping[str, str] | None = None,
) -> list[JsonObject]:
    """The Namespace, then a Deployment and a Service per dependency and per service."""
    labels = {**MANAGED_BY, **(labels or {})}
    problems = _check_input(services, dependencies)
    if problems:
        raise UsageError(
            "cannot render Kubernetes objects:\n" + "\n".join(f"  {p}" for p in problems)
        )
    objects: list[JsonObject] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": dict(labels)},
        }
    ]
    for dependency in dependencies:
        container = _dependency_container(dependency)
        objects.append(_deployment(dependency.name, namespace, labels, 1, container))
        objects.append(_service(dependency.name, namespace, labels, dependency.port()))
    for service in services:
        objects.append(
            _deployment(
                service.name, namespace, labels, service.replicas, _service_container(service)
            )
        )
        objects.append(_service(service.name, namespace, labels, service.port))
    # Unshare nested dicts (a YAML dump would write shared ones as &anchors, which confuse readers).
    objects = [json.loads(json.dumps(obj)) for obj in objects]
    for obj in objects:
        validate(obj)
    return objects


def render_yaml(
    namespace: str,
    services: Sequence[KubeService],
    dependencies: Sequence[KubeDependency] = (),
    labels: Mapping[str, str] | None = None,
) -> str:
    """The same objects as a `kubectl apply -f -` stream (documents separated by ---)."""
    text: str = yaml.safe_dump_all(
        render(namespace, services, dependencies, labels), sort_keys=False
    )
    return text


def _check_input(
    services: Sequence[KubeService], dependencies: Sequence[KubeDependency]
) -> list[str]:
    problems: list[str] = []
    names = [s.name for s in services] + [d.name for d in dependencies]
    for name in names:
        if not _DNS_LABEL.match(name):
            problems.append(
                f"{name!r}: a Kubernetes name is lower-case letters, digits and '-' (at most 63)"
            )
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{name!r}: two services or dependencies share this name")
    for service in services:
        if service.replicas < 0:
            problems.append(f"{service.name}: replicas cannot be negative")
        if not 0 < service.port < 65536:
            problems.append(f"{service.name}: port {service.port} is not a TCP port")
        for label, value, parse in (
            ("cpu", service.cpu, parse_cpu),
            ("memory", service.memory, parse_memory),
        ):
            if value is not None:
                try:
                    parse(value)
                except ValueError as exc:
                    problems.append(f"{service.name}.{label}: {exc}")
    for dependency in dependencies:
        if dependency.kind not in _DEFAULT_IMAGES:
            problems.append(
                f"{dependency.name}: kind {dependency.kind!r} is not one of postgres, redis"
            )
    return problems


def validate(obj: Mapping[str, Any]) -> None:
    """Check `obj` against the client's model for its kind; raise UsageError if it does not fit."""
    from kubernetes.client import ApiClient  # lazy: heisen --help must not import kubernetes

    kind = obj.get("kind")
    model = _KINDS.get(str(kind))
    if model is None:
        raise UsageError(f"heisen does not render objects of kind {kind!r}")
    client = ApiClient()
    try:
        parsed = client.deserialize(json.dumps(obj), model, "application/json")
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{kind} {obj.get('metadata', {}).get('name')}: {exc}") from exc
    round_trip = client.sanitize_for_serialization(parsed)  # type: ignore[no-untyped-call]
    if round_trip != obj:
        raise UsageError(
            f"{kind} {obj.get('metadata', {}).get('name')}: fields the Kubernetes API does not know: "
            + ", ".join(_differences(obj, round_trip))
        )


def _differences(original: Any, round_trip: Any, path: str = "") -> list[str]:
    if isinstance(original, Mapping) and isinstance(round_trip, Mapping):
        found: list[str] = []
        for key, value in original.items():
            if key not in round_trip:
                found.append(f"{path}.{key}".lstrip("."))
            else:
                found += _differences(value, round_trip[key], f"{path}.{key}")
        return found
    if isinstance(original, list) and isinstance(round_trip, list):
        found = []
        for index, (a, b) in enumerate(zip(original, round_trip, strict=False)):
            found += _differences(a, b, f"{path}[{index}]")
        return found
    return [] if original == round_trip else [path.lstrip(".") or "<root>"]
