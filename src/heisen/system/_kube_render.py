"""Kubernetes objects for the system under test: what `contain` applies to a cluster.

`render()` turns heisen's view of the system (services with replicas, CPU
and memory limits, a health path; PostgreSQL, Redis and HTTP dependencies to
run in-cluster) into plain dicts, in the order they are applied:

- the Namespace;
- the load agent's ServiceAccount, Role and RoleBinding, all `heisen-agent`
  (`AGENT_SERVICE_ACCOUNT`): the Role grants, in this namespace only, what the
  agent needs to watch pods, read their logs, exec into them, and create
  LitmusChaos and Chaos Mesh experiments;
- per dependency a Deployment (one replica) and a Service; a PostgreSQL with
  `init:` SQL adds a ConfigMap `<dep>-init` holding the file and a Job
  `<dep>-init` (`init_job_name()`) that waits for the server and runs the file
  with psql, stopping at the first error;
- per service a Deployment and a Service.

Every object, and every pod template, carries the caller's labels, so chaos
and cleanup can select exactly what heisen created. The dicts are checked
against the official client's models (deserialized and serialized back: a
missing required field fails the first step, a misspelt key the second),
and `render_yaml()` gives the same objects as a multi-document YAML stream
that `kubectl apply -f -` accepts.

Every container pulls its image only when the node lacks it (`PULL_POLICY`):
images built locally and loaded into the nodes work with `:latest` tags;
push a new tag to a registry to replace one.

Limits are set as both requests and limits (Guaranteed QoS): the kubelet
turns `limits.cpu: 250m` into a CFS quota of 25,000 µs per 100,000 µs period.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from heisen._serialised import JsonObject
from heisen._units import parse_cpu, parse_memory
from heisen.errors import UsageError

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "heisen"}
AGENT_SERVICE_ACCOUNT = "heisen-agent"
# Images loaded into the nodes (kind load, k3s ctr images import) are used as they are;
# `:latest` would otherwise default to Always and pull from a registry that has none.
PULL_POLICY = "IfNotPresent"
HTTP_DEPENDENCY_PORT = 8080
KIND_MODELS = {  # each kind heisen renders, and the client's model that checks it
    "Namespace": "V1Namespace",
    "ServiceAccount": "V1ServiceAccount",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "ConfigMap": "V1ConfigMap",
    "Job": "V1Job",
}
# (API group, resources, verbs). pods/exec also needs `get`: the client opens
# exec over a WebSocket, an HTTP GET, which API servers before 1.35 authorise as `get`.
_AGENT_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("", ("pods",), ("get", "list", "watch", "delete")),
    ("", ("pods/log",), ("get",)),
    ("", ("pods/exec",), ("create", "get")),
    ("apps", ("deployments",), ("get", "list")),
    ("batch", ("jobs",), ("get", "list")),
    ("litmuschaos.io", ("chaosengines",), ("create", "get", "list", "delete")),
    ("litmuschaos.io", ("chaosexperiments",), ("get",)),
    ("chaos-mesh.org", ("networkchaos", "stresschaos"), ("create", "get", "list", "delete")),
)
_INIT_MOUNT = "/init"
_INIT_BACKOFF_LIMIT = 2
_INIT_DEADLINE_S = 600
_CONFIGMAP_MAX_BYTES = 1024 * 1024
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


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
    """PostgreSQL, Redis or an HTTP API run in the cluster for the services to use.

    PostgreSQL and Redis run from `image` or a stock one; an HTTP dependency needs
    `image` (listening on $PORT) and is probed at `health_path`. `init_sql`, the
    text of the file `init_name`, is run once on a PostgreSQL by a Job.
    """

    name: str
    kind: str  # "postgres" | "redis" | "http"
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    health_path: str = "/health"
    init_sql: str | None = None
    init_name: str = "init.sql"

    def port(self) -> int:
        return {"postgres": 5432, "redis": 6379}.get(self.kind, HTTP_DEPENDENCY_PORT)

    def url(self, namespace: str) -> str:
        """How pods in `namespace` reach it."""
        host = f"{self.name}.{namespace}.svc"
        if self.kind == "postgres":
            return f"postgresql://heisen:heisen@{host}:5432/heisen"
        if self.kind == "redis":
            return f"redis://{host}:6379/0"
        return f"http://{host}:{HTTP_DEPENDENCY_PORT}"


def init_job_name(dependency: str) -> str:
    """The Job (and ConfigMap) that runs dependency `dependency`'s `init:` SQL."""
    return f"{dependency}-init"


def init_job_names(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """The Jobs among rendered `objects`, in order: each must complete before the run starts."""
    return [obj["metadata"]["name"] for obj in objects if obj.get("kind") == "Job"]


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DEFAULT_IMAGES = {"postgres": "postgres:16-alpine", "redis": "redis:7-alpine"}
_KINDS_RUN = ("postgres", "redis", "http")


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


def _agent_access(namespace: str, labels: Mapping[str, str]) -> list[JsonObject]:
    name = AGENT_SERVICE_ACCOUNT
    rules = [
        {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
        for group, resources, verbs in _AGENT_RULES
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _metadata(name, namespace, labels),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _metadata(name, namespace, labels),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(name, namespace, labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def _init_objects(
    dependency: KubeDependency, namespace: str, labels: Mapping[str, str]
) -> list[JsonObject]:
    """A ConfigMap holding the SQL and a Job that runs it once PostgreSQL answers."""
    assert dependency.init_sql is not None
    name = init_job_name(dependency.name)
    # Its own app name: the dependency's Service selects on the dependency's, and must not pick it.
    pod_labels = {**labels, NAME_LABEL: name}
    host = dependency.name
    path = shlex.quote(f"{_INIT_MOUNT}/{dependency.init_name}")
    script = (
        f"until pg_isready -h {host} -U heisen; do sleep 1; done; "
        f"exec psql -v ON_ERROR_STOP=1 -h {host} -U heisen -d heisen -f {path}"
    )
    container: JsonObject = {
        "name": "init",
        "image": dependency.image or _DEFAULT_IMAGES["postgres"],
        "imagePullPolicy": PULL_POLICY,
        "command": ["sh", "-c", script],
        "env": [{"name": "PGPASSWORD", "value": "heisen"}],
        "volumeMounts": [{"name": "init", "mountPath": _INIT_MOUNT, "readOnly": True}],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(name, namespace, pod_labels),
            "data": {dependency.init_name: dependency.init_sql},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _metadata(name, namespace, pod_labels),
            "spec": {
                "backoffLimit": _INIT_BACKOFF_LIMIT,
                "activeDeadlineSeconds": _INIT_DEADLINE_S,
                "template": {
                    "metadata": {"labels": dict(pod_labels)},
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 5,
                        "containers": [container],
                        "volumes": [{"name": "init", "configMap": {"name": name}}],
                    },
                },
            },
        },
    ]


def _service_container(service: KubeService) -> JsonObject:
    env = {"PORT": str(service.port), **service.env}
    probe = {"httpGet": {"path": service.health_path, "port": service.port}, "timeoutSeconds": 2}
    container: JsonObject = {
        "name": service.name,
        "image": service.image,
        "imagePullPolicy": PULL_POLICY,
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
    if dependency.kind == "http":
        assert dependency.image is not None
        return _service_container(
            KubeService(
                name=dependency.name,
                image=dependency.image,
                replicas=1,
                port=dependency.port(),
                env=dependency.env,
                health_path=dependency.health_path,
            )
        )
    port = dependency.port()
    container: JsonObject = {
        "name": dependency.name,
        "image": dependency.image or _DEFAULT_IMAGES[dependency.kind],
        "imagePullPolicy": PULL_POLICY,
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
    """The objects to apply, in order: see the module's docstring."""
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
    objects += _agent_access(namespace, labels)
    for dependency in dependencies:
        container = _dependency_container(dependency)
        objects.append(_deployment(dependency.name, namespace, labels, 1, container))
        objects.append(_service(dependency.name, namespace, labels, dependency.port()))
        if dependency.init_sql is not None:
            objects += _init_objects(dependency, namespace, labels)
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
    names += [init_job_name(d.name) for d in dependencies if d.init_sql is not None]
    for name in names:
        if not _DNS_LABEL.match(name):
            problems.append(
                f"{name!r}: a Kubernetes name is lower-case letters, digits and '-' (at most 63)"
            )
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(
            f"{name!r}: two services, dependencies or init Jobs (<dependency>-init) share this name"
        )
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
        problems += _dependency_problems(dependency)
    return problems


def _dependency_problems(dependency: KubeDependency) -> list[str]:
    name, kind = dependency.name, dependency.kind
    if kind not in _KINDS_RUN:
        return [f"{name}: kind {kind!r} is not one of {', '.join(_KINDS_RUN)}"]
    problems = []
    if kind == "http" and not dependency.image:
        problems.append(f"{name}: an HTTP dependency runs from an image (listening on $PORT)")
    if dependency.init_sql is not None:
        if kind != "postgres":
            problems.append(f"{name}: init SQL runs on postgres only")
        if not _CONFIGMAP_KEY.match(dependency.init_name):
            problems.append(
                f"{name}: init file name {dependency.init_name!r} is not a ConfigMap key "
                "(letters, digits, '-', '_', '.')"
            )
        if len(dependency.init_sql.encode()) >= _CONFIGMAP_MAX_BYTES:
            problems.append(f"{name}: init SQL over 1 MiB does not fit in a ConfigMap")
    return problems


def validate(obj: Mapping[str, Any]) -> None:
    """Check `obj` against the client's model for its kind; raise UsageError if it does not fit."""
    from kubernetes.client import ApiClient  # lazy: heisen --help must not import kubernetes

    kind = obj.get("kind")
    model = KIND_MODELS.get(str(kind))
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
