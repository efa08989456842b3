"""A pipeline as the Kubernetes backend runs it: services and dependencies to render.

Each service becomes a Deployment of its `image:` (which must start the
service listening on `$PORT`, 8080) with the given limits as requests and
limits; each embedded PostgreSQL or Redis dependency a Deployment of the
stock image, its `init:` SQL run by a Job; each HTTP dependency heisen would
start with `command:` a Deployment of its `image:`, like a service with one
replica. A dependency at `dsn:` or `url:` already runs somewhere: it is not
rendered, and the pods use that address.
`env:` templates are rendered for the cluster (`{{ deps.postgres.dsn }}` is
the in-cluster Service's DSN, `{{ deps.payments.url }}` the HTTP one's URL).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from heisen import _templates
from heisen._yaml import YamlDocument, load_yaml_file
from heisen.errors import PipelineError, Problem
from heisen.schema import Dependency, DependencyKind, LoadedPipeline, Resources
from heisen.system._context import DependencyEndpoint, Endpoint, TemplateContext
from heisen.system._kube_render import KubeDependency, KubeService

SERVICE_PORT = 8080
RUN_LABEL = "heisen.dev/run"
_MEMORY_UNITS = (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024))


def format_cpu(cores: float | None) -> str | None:
    """Cores as a Kubernetes CPU quantity: 0.25 -> `250m`, 2.0 -> `2`."""
    if cores is None:
        return None
    millis = round(cores * 1000)
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_memory(size: int | None) -> str | None:
    """Bytes as a Kubernetes memory quantity: 268435456 -> `256Mi` (plain bytes when no unit divides)."""
    if size is None:
        return None
    for unit, factor in _MEMORY_UNITS:
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def run_label(run_id: str) -> str:
    """The run id as a label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9._-]", "-", run_id)[:63].strip("-._")
    return value or "run"


def kube_model(
    loaded: LoadedPipeline, namespace: str, limits: Mapping[str, Resources]
) -> tuple[list[KubeService], list[KubeDependency]]:
    """The services and dependencies the kubernetes backend runs; every missing `image:` at once.

    `limits` gives the CPU and memory each service runs under (a service absent runs unlimited).
    """
    pipeline = loaded.pipeline
    document = load_yaml_file(loaded.path)
    problems = [
        document.problem(
            ("services", name, "image"),
            "the kubernetes backend needs a container image that runs "
            f"this service (listening on $PORT); add image: (e.g. ghcr.io/you/{name}:1)",
        )
        for name, service in pipeline.services.items()
        if not service.image
    ]
    dependencies: list[KubeDependency] = []
    external: dict[str, str] = {}
    for name, dep in pipeline.dependencies.items():
        if dep.url or dep.dsn:  # already running where it is: the pods use it there
            external[name] = str(dep.url or dep.dsn)
            continue
        found = _dependency(loaded, document, name, dep)
        if isinstance(found, Problem):
            problems.append(found)
        else:
            dependencies.append(found)
    if problems:
        raise PipelineError(str(loaded.path), problems)
    context = _cluster_context(pipeline.services, dependencies, external, namespace, pipeline.seed)
    resolve = _templates.mapping_resolver(context)

    def cluster_env(env: Mapping[str, str]) -> dict[str, str]:
        rendered = {key: str(_templates.render_text(value, resolve)) for key, value in env.items()}
        rendered.setdefault("SEED", str(pipeline.seed or 0))
        return rendered

    dependencies = [
        dataclasses.replace(dep, env=cluster_env(pipeline.dependencies[dep.name].env))
        if dep.kind == "http"
        else dep
        for dep in dependencies
    ]
    services = []
    for name, service in pipeline.services.items():
        env = cluster_env(service.env)
        resources = limits.get(name)
        assert service.image is not None
        services.append(
            KubeService(
                name=name,
                image=service.image,
                replicas=service.replicas,
                port=SERVICE_PORT,
                env=env,
                cpu=format_cpu(resources.cpu) if resources else None,
                memory=format_memory(resources.memory) if resources else None,
                health_path=service.health.path,
            )
        )
    return services, dependencies


def _dependency(
    loaded: LoadedPipeline, document: YamlDocument, name: str, dep: Dependency
) -> KubeDependency | Problem:
    """Dependency `name` as the cluster runs it, or why it cannot."""
    if dep.kind == DependencyKind.HTTP:
        if not dep.image:
            return document.problem(
                ("dependencies", name, "image"),
                "the kubernetes backend needs a container image that runs this HTTP "
                f"dependency (listening on $PORT); add image: (e.g. ghcr.io/you/{name}:1), "
                "or give url: if it already runs where the cluster reaches it",
            )
        return KubeDependency(name, "http", image=dep.image, health_path=dep.health.path)
    if not dep.init:
        return KubeDependency(name, dep.kind.value)
    try:
        sql = loaded.resolve(dep.init).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return document.problem(
            ("dependencies", name, "init"), f"cannot read {dep.init} to run in the cluster: {exc}"
        )
    init_name = re.sub(r"[^-._a-zA-Z0-9]", "-", dep.init.rsplit("/", 1)[-1]) or "init.sql"
    return KubeDependency(name, dep.kind.value, init_sql=sql, init_name=init_name)


_DEFAULT_PORTS = {"https": 443, "postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379}


def _cluster_context(
    services: Iterable[str],
    dependencies: list[KubeDependency],
    external: Mapping[str, str],
    namespace: str,
    seed: int | None,
) -> TemplateContext:
    deps: dict[str, DependencyEndpoint] = {}
    for name, url in external.items():
        parts = urlsplit(url)
        deps[name] = {
            "dsn": url,
            "url": url,
            "host": parts.hostname or "",
            "port": parts.port or _DEFAULT_PORTS.get(parts.scheme, 80),
        }
    for dep in dependencies:
        address = dep.url(namespace)
        deps[dep.name] = {
            "dsn": address,
            "url": address,
            "host": f"{dep.name}.{namespace}.svc",
            "port": dep.port(),
        }
    urls: dict[str, Endpoint] = {
        name: {
            "url": f"http://{name}.{namespace}.svc:{SERVICE_PORT}",
            "host": f"{name}.{namespace}.svc",
            "port": SERVICE_PORT,
        }
        for name in services
    }
    return {
        "deps": deps,
        "services": urls,
        "python": "python",
        "run_dir": "/tmp",
        "seed": seed or 0,
        "replica": 0,
    }
