"""KubeSystem: the system a pipeline describes, run in one Kubernetes namespace.

Two sides use it. The runner (the driver) creates it for a phase that runs
on a cluster (contain or chaos with `backend: kubernetes`), with the limits
that phase asks for: start() renders the pipeline (`kube_model`), applies the
objects, waits for the dependencies' `init:` Jobs and for the rollout;
the runner then sends the phase to heisen's agent, a Job in the namespace
(`heisen.agent.run_in_cluster`); stop() deletes the namespace
(only if heisen made it), with further signals ignored while that runs; what
fails is returned, never swallowed. The agent attaches one (`attached()`) to
the same namespace: it applies nothing, and reaches every service through its
Service's cluster address, as production traffic does.

What a cluster cannot do here raises UsageError saying why: heisen puts no
proxy on a cluster's links (so no toxics, taps or stubs: chaos's network
faults go through the cluster's chaos engine), and it sets limits when it
renders the Deployments. A replica is a pod: killing it deletes the pod, and
its Deployment makes a new one; its CPU throttling is read in the pod.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from heisen._serialised import JsonObject
from heisen.errors import SystemUnavailable, UsageError
from heisen.schema import DependencyKind, LoadedPipeline, Resources
from heisen.system._kube import KubeBackend, PodInfo, RolloutStatus
from heisen.system._kube_model import SERVICE_PORT, kube_model
from heisen.system._kube_render import NAME_LABEL, KubeService, render
from heisen.system_protocol import (
    CpuThrottling,
    DependencyOperation,
    Enforcement,
    LinkTraffic,
    ProcessGroup,
    ReplicaState,
    TeardownProblem,
)

ROLLOUT_DEADLINE_S = 300.0
NO_LINKS = (
    "a system on Kubernetes has no link proxies: heisen reaches its services through "
    "their Services, so it cannot put toxics, taps or stubs on a link there"
)
# cgroup v2 first, then v1's cpu controller (as the kubelet mounts it in a container)
CPU_STAT = "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.stat"


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where each service and dependency is, as the agent reaches them."""

    services: dict[str, str]  # name -> http(s):// URL
    dependencies: dict[str, tuple[str, str]]  # name -> (kind, DSN or URL)


class KubePods:
    """The pods of one Deployment, as replicas: listed in name order, killed by deleting them."""

    def __init__(self, backend: KubeBackend | None, name: str, enforcement: Enforcement) -> None:
        self._backend = backend
        self._name = name
        self._enforcement = enforcement

    @property
    def name(self) -> str:
        return self._name

    @property
    def enforcement(self) -> Enforcement:
        return self._enforcement

    def _api(self) -> KubeBackend:
        if self._backend is None:
            raise UsageError(
                f"the pods of {self._name} are not known here: this agent runs without "
                "access to the cluster's API"
            )
        return self._backend

    def pods(self) -> list[PodInfo]:
        return sorted(self._api().list_pods({NAME_LABEL: self._name}), key=lambda p: p.name)

    def replicas_info(self) -> list[ReplicaState]:
        return [
            ReplicaState(
                index,
                None,
                SERVICE_PORT,
                pod.ready,
                pod.restarts,
                pod.phase in ("Pending", "Running"),
            )
            for index, pod in enumerate(self.pods())
        ]

    def kill(self, index: int, sig: int = signal.SIGKILL) -> int | None:
        """Delete pod `index` (at once for SIGKILL, else with its grace period); no pid to return."""
        pods = self.pods()
        if not 0 <= index < len(pods):
            raise UsageError(f"{self._name} has {len(pods)} pods: there is no replica {index}")
        self._api().delete_pod(pods[index].name, grace_period_s=0 if sig == signal.SIGKILL else 5)
        return None

    def cgroup_of(self, index: int) -> ProcessGroup | None:
        return None

    def throttling_by_pod(self) -> dict[str, CpuThrottling] | None:
        """Each ready pod's CFS counters, read in the pod; None when a pod cannot be read."""
        if self._backend is None:
            return None
        counters: dict[str, CpuThrottling] = {}
        for pod in self.pods():
            if not pod.ready:
                continue
            try:
                text = self._backend.run_in_pod(pod.name, ["sh", "-c", CPU_STAT])
            except SystemUnavailable:
                return None
            counters[pod.name] = parse_cpu_stat(text)
        return counters

    def throttling(self) -> CpuThrottling | None:
        by_pod = self.throttling_by_pod()
        if by_pod is None:
            return None
        total = CpuThrottling()
        for counters in by_pod.values():
            total = total + counters
        return total

    def cpu_usage_s(self) -> float:
        raise UsageError(
            f"heisen does not read the CPU {self._name}'s pods use: it is inside the pods "
            "(kubectl top pod)"
        )


def parse_cpu_stat(text: str) -> CpuThrottling:
    """cpu.stat as cgroup v2 (throttled_usec) or v1 (throttled_time, in ns) writes it."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    if "nr_periods" not in values:
        raise SystemUnavailable(f"not a cgroup cpu.stat: {text[:200]!r}")
    throttled_s = (
        values["throttled_usec"] / 1e6
        if "throttled_usec" in values
        else values.get("throttled_time", 0) / 1e9
    )
    return CpuThrottling(values["nr_periods"], values.get("nr_throttled", 0), throttled_s)


class KubeSystem:
    """Render, apply, reach, disturb and delete the system in one namespace of one cluster."""

    def __init__(
        self,
        loaded: LoadedPipeline,
        *,
        namespace: str,
        labels: Mapping[str, str],
        limits: Mapping[str, Resources],
        kubeconfig: Path | str | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        api: bool = True,
        reach: Addresses | None = None,
        agent_image: str = "heisen/agent:latest",
        rollout_deadline_s: float = ROLLOUT_DEADLINE_S,
        log: Callable[[str], None] | None = None,
        on_rollout: Callable[[RolloutStatus], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.pipeline = loaded.pipeline
        self.namespace = namespace
        self.labels = dict(labels)
        self.limits = dict(limits)
        self.agent_image = agent_image
        self.services, self.dependencies = kube_model(loaded, namespace, limits)
        self.objects = render(namespace, self.services, self.dependencies, labels)
        self.rollout_deadline_s = rollout_deadline_s
        self._log = log or (lambda message: None)
        self._on_rollout = on_rollout
        self._backend = (
            KubeBackend(
                namespace=namespace,
                labels=labels,
                kubeconfig=kubeconfig,
                context=context,
                in_cluster=in_cluster,
            )
            if api
            else None
        )
        self._cluster: str | None = self._backend.host if self._backend else None
        self._urls = {s.name: f"http://{s.name}.{namespace}.svc:{s.port}" for s in self.services}
        self._reached = self._cluster_dependencies()
        if reach is not None:  # somewhere else than the cluster's names: the agent's plan says
            self._urls = dict(reach.services)
            self._reached = {
                name: (DependencyKind(kind), address)
                for name, (kind, address) in reach.dependencies.items()
            }
        self._touched = False  # start() ran, so the namespace may exist

    @classmethod
    def attached(
        cls,
        loaded: LoadedPipeline,
        *,
        namespace: str,
        labels: Mapping[str, str],
        limits: Mapping[str, Resources],
        reach: Addresses,
        cluster: str | None,
        in_cluster: bool,
        kubeconfig: str | None = None,
    ) -> KubeSystem:
        """The agent's view of a namespace the driver started: nothing to apply or delete.

        `reach` says where each service and dependency is (their cluster addresses, in a pod);
        with `in_cluster`, replicas are pods read through the pod's service account (or through
        `kubeconfig`, for an agent outside the cluster); with neither, they are unknown.
        """
        system = cls(
            loaded,
            namespace=namespace,
            labels=labels,
            limits=limits,
            kubeconfig=kubeconfig,
            in_cluster=in_cluster,
            api=in_cluster or kubeconfig is not None,
            reach=reach,
        )
        system._cluster = cluster
        return system

    @property
    def backend(self) -> KubeBackend:
        if self._backend is None:
            raise UsageError("this view of the cluster has no access to its API")
        return self._backend

    @property
    def host(self) -> str | None:
        """The API server's address."""
        return self._cluster

    def _cluster_dependencies(self) -> dict[str, tuple[DependencyKind, str]]:
        """Each dependency as pods in the namespace reach it: its Service, or its own url/dsn."""
        rendered = {dep.name: dep for dep in self.dependencies}
        reached: dict[str, tuple[DependencyKind, str]] = {}
        for name, dep in self.pipeline.dependencies.items():
            if name in rendered:
                reached[name] = (dep.kind, rendered[name].url(self.namespace))
            elif dep.dsn or dep.url:
                reached[name] = (dep.kind, str(dep.dsn or dep.url))
        return reached

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> KubeSystem:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._touched = True
        self._log(
            f"applying {len(self.objects)} objects to namespace {self.namespace} at {self.host}"
        )
        self.backend.apply(self.objects)
        # the init: Jobs first: a service may not become ready before its schema exists
        for job in (o["metadata"]["name"] for o in self.objects if o["kind"] == "Job"):
            self._log(f"waiting for job {job} (a dependency's init:)")
            self.backend.wait_job(job, self.rollout_deadline_s)
        self.backend.wait_rollout(self.rollout_deadline_s, progress=self._on_rollout)

    def addresses(self) -> Addresses:
        """Where the agent reaches each service and dependency."""
        return Addresses(
            services=dict(self._urls),
            dependencies={name: (kind.value, a) for name, (kind, a) in self._reached.items()},
        )

    def stop(self) -> list[TeardownProblem]:
        """Delete the namespace (if this started it) and close the API client; what failed is
        returned. Signals are ignored meanwhile, so a second Ctrl-C cannot leave it behind."""
        from heisen._interrupts import signals_shielded

        problems: list[TeardownProblem] = []
        if self._backend is None:
            return problems
        touched, self._touched = self._touched, False
        with signals_shielded():
            if touched:
                self._log(f"deleting namespace {self.namespace}")
                try:
                    self._backend.delete_namespace()
                except Exception as exc:
                    problems.append(TeardownProblem.of(f"namespace {self.namespace}", exc))
            try:
                self._backend.close_client()
            except Exception as exc:
                problems.append(TeardownProblem.of("Kubernetes API client", exc))
        return problems

    def kill(self) -> None:
        """The last resort: nothing runs on this machine; the namespace is left for `kubectl delete`."""

    def describe(self) -> JsonObject:
        return {
            "services": {
                s.name: {"url": self._urls.get(s.name), "replicas": s.replicas}
                for s in self.services
            },
            "dependencies": {
                name: {"kind": kind.value, "address": address}
                for name, (kind, address) in self._reached.items()
            },
            "links": self.links(),
            "namespace": self.namespace,
            "cluster": self.host,
        }

    # ----------------------------------------------------------------- endpoints

    def _service(self, name: str | None) -> KubeService:
        if name is None:
            return self.services[0]
        for service in self.services:
            if service.name == name:
                return service
        raise UsageError(f"no service named {name!r}")

    def service_url(self, name: str | None = None) -> str:
        service = self._service(name)
        try:
            return self._urls[service.name]
        except KeyError:
            raise UsageError(
                f"service {service.name!r} is not reached yet: start() first"
            ) from None

    def service_address(self, name: str | None = None) -> tuple[str, int]:
        parts = urlsplit(self.service_url(name))
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)

    def dependency_address(self, name: str) -> str:
        try:
            return self._reached[name][1]
        except KeyError:
            raise UsageError(f"no dependency named {name!r}") from None

    def dependency_of_kind(self, kind: DependencyKind, name: str | None = None) -> str:
        if name is not None:
            return self.dependency_address(name)
        matches = [address for k, address in self._reached.values() if k == kind]
        if len(matches) != 1:
            raise UsageError(f"say which {kind.value} dependency with on: (found {len(matches)})")
        return matches[0]

    # ----------------------------------------------------------------- replicas and limits

    def replicas(self, service: str | None = None) -> KubePods:
        name = self._service(service).name
        limits = self.resources_of(name)
        return KubePods(self._backend, name, Enforcement("kubernetes", limits.cpu, limits.memory))

    def replica_of_peers(self, service: str | None = None) -> dict[int, int]:
        """Unknown on a cluster (a Service hides which pod served a connection): {}."""
        self._service(service)
        return {}

    def kill_replica(self, service: str, index: int, sig: int = signal.SIGKILL) -> int:
        self.replicas(service).kill(index, sig)
        return int(index)

    def resources_of(self, service: str) -> Resources:
        self._service(service)
        return self.limits.get(service, Resources())

    def set_resources(self, service: str, resources: Resources) -> KubePods:
        self._service(service)
        raise UsageError(
            f"service {service!r} runs on Kubernetes: heisen sets its limits when it renders "
            "the Deployment, and does not change them while it runs"
        )

    def cgroups_unavailable_reason(self) -> str | None:
        return "the pods' cgroups are on the cluster's nodes: the kubelet enforces the limits"

    def restart_dependency(self, name: str) -> None:
        """Delete the dependency's pod; its Deployment starts a new one."""
        self.dependency_address(name)
        self.backend.delete_pod({NAME_LABEL: name})

    # ----------------------------------------------------------------- links: none here

    def links(self) -> list[str]:
        return []

    def link_proxy(self, link: str) -> str:
        raise UsageError(f"no link {link!r}: {NO_LINKS}")

    def link_traffic(self, link: str) -> LinkTraffic:
        raise UsageError(f"no link {link!r}: {NO_LINKS}")

    def tap_links(self) -> dict[str, str]:
        raise UsageError(f"no link to read the traffic of: {NO_LINKS}")

    def untap_links(self) -> None:
        """Nothing to stop: no link is tapped on a cluster."""

    def link_operations(self, link: str, since: int = 0) -> tuple[int, list[DependencyOperation]]:
        raise UsageError(f"no link {link!r}: {NO_LINKS}")

    def link_tap_lost(self, link: str) -> dict[str, int]:
        raise UsageError(f"no link {link!r}: {NO_LINKS}")

    def add_toxic(self, link: str, toxic: Mapping[str, Any]) -> JsonObject:
        raise UsageError(f"no link {link!r}: {NO_LINKS}")

    def remove_toxic(self, link: str, name: str) -> None:
        raise UsageError(f"no link {link!r}: {NO_LINKS}")

    def set_link_enabled(self, link: str, enabled: bool) -> None:
        raise UsageError(f"no link {link!r}: {NO_LINKS}")

    def reset_faults(self) -> None:
        """Nothing to reset: no toxic can be on a cluster's link."""

    def start_stub(self, dependency: str, root: Path) -> str:
        raise UsageError(f"cannot stub {dependency!r}: {NO_LINKS}")

    def stop_stub(self, dependency: str) -> None:
        """Nothing to stop: no stub runs on a cluster."""
