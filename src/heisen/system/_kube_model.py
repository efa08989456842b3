"""A pipeline as the Kubernetes backend runs it: services and dependencies to render.

Each service becomes a Deployment of its `image:` (which must start the
service listening on `$PORT`, 8080) with the given limits as requests and
limits; each PostgreSQL or Redis dependency a Deployment of the stock image,
in one namespace. `env:` templates are rendered for the cluster
(`{{ deps.postgres.dsn }}` is the in-cluster Service's DSN).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from heisen import _templates
from heisen._yaml import load_yaml_file
from heisen.errors import PipelineError
from heisen.schema import DependencyKind, LoadedPipeline, Resources
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
    for name, dep in pipeline.dependencies.items():
        if dep.kind == DependencyKind.HTTP:
            problems.append(
                document.problem(
                    ("dependencies", name),
                    "the kubernetes backend runs PostgreSQL "
                    "and Redis in the cluster; an HTTP dependency cannot be moved there",
                )
            )
        else:
            dependencies.append(KubeDependency(name, dep.kind.value))
    if problems:
        raise PipelineError(str(loaded.path), problems)
    context = _cluster_context(pipeline.services, dependencies, namespace, pipeline.seed)
    resolve = _templates.mapping_resolver(context)
    services = []
    for name, service in pipeline.services.items():
        env = {
            key: str(_templates.render_text(value, resolve)) for key, value in service.env.items()
        }
        env.setdefault("SEED", str(pipeline.seed or 0))
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


def _cluster_context(
    services: Iterable[str],
    dependencies: list[KubeDependency],
    namespace: str,
    seed: int | None,
) -> TemplateContext:
    deps: dict[str, DependencyEndpoint] = {}
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
