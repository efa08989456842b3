"""contain on Kubernetes: the services as Deployments with `resources.limits`, loaded in the cluster.

The pipeline becomes objects (`kube_model`): each service a Deployment of its
`image:` (which must start the service listening on `$PORT`, 8080) with the
effective limits as requests and limits, each PostgreSQL or Redis
dependency a Deployment of the stock image, in one namespace, all labelled
with the run. `env:` templates are rendered for the cluster (`{{ deps.postgres.dsn }}`
is the in-cluster Service's DSN).

The runner hands every phase the local SystemHandle; the trials here must
reach the cluster instead, so this module passes `run_trials` a
`RemoteSystem`: the three methods the scenario engine calls
(`service_address`, `service_url`, `dependency_of_kind`), answered with
port-forward tunnels opened by `KubeBackend.service_url`. Probes and setup
reach PostgreSQL/Redis through the same tunnels.

The namespace is deleted at the end on every path (success, error, Ctrl-C),
with further signals ignored while that runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from heisen import _templates, events
from heisen._yaml import load_yaml_file
from heisen.contain._limits import BackendRun, effective_limits, format_cpu, format_memory
from heisen.errors import PipelineError, SystemUnavailable, UsageError
from heisen.phase import PhaseContext
from heisen.pipeline import ContainSection, DependencyKind, LoadedPipeline
from heisen.stress import Conditions, run_trials
from heisen.system._kube_render import KubeDependency, KubeService, render

SERVICE_PORT = 8080
ROLLOUT_DEADLINE_S = 300.0
RUN_LABEL = "heisen.dev/run"


def kube_model(
    loaded: LoadedPipeline, section: ContainSection
) -> tuple[list[KubeService], list[KubeDependency]]:
    """The services and dependencies the kubernetes backend runs; every missing `image:` at once."""
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
    context = _cluster_context(
        pipeline.services, dependencies, section.namespace, loaded.pipeline.seed
    )
    limits = effective_limits(pipeline, section.resources)
    services = []
    for name, service in pipeline.services.items():
        resolve = _templates.mapping_resolver(context)
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
    services: Mapping[str, Any],
    dependencies: list[KubeDependency],
    namespace: str,
    seed: int | None,
) -> dict[str, Any]:
    deps = {}
    for dep in dependencies:
        address = dep.url(namespace)
        deps[dep.name] = {
            "dsn": address,
            "url": address,
            "host": f"{dep.name}.{namespace}.svc",
            "port": dep.port(),
        }
    urls = {
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


def run_label(run_id: str) -> str:
    """The run id as a label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9._-]", "-", run_id)[:63].strip("-._")
    return value or "run"


class RemoteSystem:
    """What the scenario engine asks of a system, answered for one that runs in a cluster."""

    def __init__(
        self, services: Mapping[str, str], dependencies: Mapping[str, tuple[DependencyKind, str]]
    ) -> None:
        self._services = dict(services)
        self._dependencies = dict(dependencies)

    def service_url(self, name: str | None = None) -> str:
        name = name or next(iter(self._services))
        try:
            return self._services[name]
        except KeyError:
            raise UsageError(f"no service named {name!r}") from None

    def service_address(self, name: str | None = None) -> tuple[str, int]:
        parts = urlsplit(self.service_url(name))
        return parts.hostname or "127.0.0.1", parts.port or 80

    def dependency_address(self, name: str) -> str:
        try:
            return self._dependencies[name][1]
        except KeyError:
            raise UsageError(f"no dependency named {name!r}") from None

    def dependency_of_kind(self, kind: DependencyKind, name: str | None = None) -> str:
        if name is not None:
            return self.dependency_address(name)
        matches = [address for k, address in self._dependencies.values() if k == kind]
        if len(matches) != 1:
            raise UsageError(f"say which {kind.value} dependency with on: (found {len(matches)})")
        return matches[0]


def run_kubernetes(ctx: PhaseContext, section: ContainSection) -> BackendRun:
    from heisen.system._kube import KubeBackend

    services, dependencies = kube_model(ctx.loaded, section)
    labels = {RUN_LABEL: run_label(ctx.manifest.run.id)}
    objects = render(section.namespace, services, dependencies, labels)
    kubeconfig = ctx.loaded.resolve(section.kubeconfig) if section.kubeconfig else None
    backend = KubeBackend(
        namespace=section.namespace, labels=labels, kubeconfig=kubeconfig, context=section.context
    )
    try:
        result = _deploy_and_run(ctx, section, backend, objects, services, dependencies)
    except BaseException:
        _tear_down(ctx, backend, failing=True)
        raise
    _tear_down(ctx, backend, failing=False)
    extras = {
        "limits": {
            s.name: {"cpu": s.cpu, "memory": s.memory} for s in services if s.cpu or s.memory
        },
        "throttled": {"periods": None, "throttled_periods": None, "throttled_s": None},
        "enforcement": "kubernetes",
        "namespace": section.namespace,
        "cluster": backend.host,
    }
    notes = [
        "throttling not read: cpu.stat is inside the pods (kubectl exec POD -- cat /sys/fs/cgroup/cpu.stat)"
    ]
    return BackendRun(result, extras, notes)


def _deploy_and_run(
    ctx: PhaseContext,
    section: ContainSection,
    backend: Any,
    objects: list[dict[str, Any]],
    services: list[KubeService],
    dependencies: list[KubeDependency],
) -> Any:
    ctx.emit(
        events.Progress(
            "contain",
            f"applying {len(objects)} objects to namespace {section.namespace} at {backend.host}",
        )
    )
    backend.apply(objects)
    backend.wait_rollout(
        ROLLOUT_DEADLINE_S,
        progress=lambda s: ctx.emit(
            events.Progress(
                "contain",
                f"rollout {s.deployment}: {s.ready}/{s.desired} ready",
                s.ready,
                s.desired,
            )
        ),
    )
    remote = _reach(backend, services, dependencies)
    _init_dependencies(ctx, remote)
    conditions = Conditions.of_section("contain", section, ctx.options)
    return run_trials(dataclasses.replace(ctx, system=remote), conditions)  # type: ignore[arg-type]


def _reach(
    backend: Any, services: list[KubeService], dependencies: list[KubeDependency]
) -> RemoteSystem:
    urls = {service.name: backend.service_url(service.name) for service in services}
    reached: dict[str, tuple[DependencyKind, str]] = {}
    for dep in dependencies:
        port = urlsplit(backend.service_url(dep.name)).port
        if dep.kind == "postgres":
            reached[dep.name] = (
                DependencyKind.POSTGRES,
                f"postgresql://heisen:heisen@127.0.0.1:{port}/heisen",
            )
        else:
            reached[dep.name] = (DependencyKind.REDIS, f"redis://127.0.0.1:{port}/0")
    return RemoteSystem(urls, reached)


def _init_dependencies(ctx: PhaseContext, remote: RemoteSystem) -> None:
    from heisen.oracle import probes

    for name, dep in ctx.pipeline.dependencies.items():
        if dep.init:
            ctx.emit(events.Progress("contain", f"running {dep.init} on {name} in the cluster"))
            sql = ctx.loaded.resolve(dep.init).read_text(encoding="utf-8")
            try:
                probes.run_setup_sql(remote.dependency_address(name), sql)
            except SystemUnavailable as exc:
                raise SystemUnavailable(
                    f"cannot initialise {name} in the cluster through a port-forward: {exc}"
                ) from exc


def _tear_down(ctx: PhaseContext, backend: Any, *, failing: bool) -> None:
    from heisen._interrupts import signals_shielded

    with signals_shielded():
        ctx.emit(events.Progress("contain", f"deleting namespace {backend.namespace}"))
        try:
            backend.delete_namespace()
        except Exception as exc:
            if not failing:
                raise
            ctx.emit(
                events.Warning("contain", f"could not delete namespace {backend.namespace}: {exc}")
            )
        finally:
            backend.__exit__(None, None, None)
