"""KubeSystem: the system a pipeline describes, run in one Kubernetes namespace.

The runner creates it for a phase that runs on a cluster (contain with
`backend: kubernetes`), with the limits that phase asks for, and stops it
right after that phase; the phase sees it only as a `System`.

start() renders the pipeline (`kube_model`), applies the objects, waits for
the rollout, reaches every service and dependency through a port-forward
tunnel on this machine (`KubeBackend.service_url`), then runs the
dependencies' `init:` SQL through those tunnels. stop() deletes the
namespace (only if heisen made it) and closes the tunnels, with further
signals ignored while that runs; what fails is returned, never swallowed.

What a cluster cannot do here raises UsageError saying why: heisen puts no
proxy on a cluster's links (so no toxics, taps or stubs), it does not read
the pods' cgroups, and it sets limits when it renders the Deployments.
A replica is a pod: killing it deletes the pod, and its Deployment makes a new one.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from heisen._serialised import JsonObject
from heisen.errors import SystemUnavailable, UsageError
from heisen.schema import DependencyKind, LoadedPipeline, Resources
from heisen.system._kube import KubeBackend, PodInfo, RolloutStatus
from heisen.system._kube_model import SERVICE_PORT, kube_model
from heisen.system._kube_render import NAME_LABEL, KubeService, render
from heisen.system._ports import LOOPBACK
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
    "port-forwards, so it cannot put toxics, taps or stubs on a link there"
)


class KubePods:
    """The pods of one Deployment, as replicas: listed in name order, killed by deleting them."""

    def __init__(self, backend: KubeBackend, name: str, enforcement: Enforcement) -> None:
        self._backend = backend
        self._name = name
        self._enforcement = enforcement

    @property
    def name(self) -> str:
        return self._name

    @property
    def enforcement(self) -> Enforcement:
        return self._enforcement

    def pods(self) -> list[PodInfo]:
        return sorted(self._backend.list_pods({NAME_LABEL: self._name}), key=lambda p: p.name)

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
        self._backend.delete_pod(pods[index].name, grace_period_s=0 if sig == signal.SIGKILL else 5)
        return None

    def cgroup_of(self, index: int) -> ProcessGroup | None:
        return None

    def throttling(self) -> CpuThrottling | None:
        return None  # cpu.stat is inside the pods

    def cpu_usage_s(self) -> float:
        raise UsageError(
            f"heisen does not read the CPU {self._name}'s pods use: it is inside the pods "
            "(kubectl top pod)"
        )


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
        rollout_deadline_s: float = ROLLOUT_DEADLINE_S,
        log: Callable[[str], None] | None = None,
        on_rollout: Callable[[RolloutStatus], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.pipeline = loaded.pipeline
        self.namespace = namespace
        self.limits = dict(limits)
        self.services, self.dependencies = kube_model(loaded, namespace, limits)
        self.objects = render(namespace, self.services, self.dependencies, labels)
        self.rollout_deadline_s = rollout_deadline_s
        self._log = log or (lambda message: None)
        self._on_rollout = on_rollout
        self.backend = KubeBackend(
            namespace=namespace, labels=labels, kubeconfig=kubeconfig, context=context
        )
        self._urls: dict[str, str] = {}
        self._reached: dict[str, tuple[DependencyKind, str]] = {}
        self._touched = False  # start() ran, so the namespace may exist

    @property
    def host(self) -> str:
        """The API server's address."""
        return self.backend.host

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
        self.backend.wait_rollout(self.rollout_deadline_s, progress=self._on_rollout)
        self._reach()
        self._init_dependencies()

    def _reach(self) -> None:
        self._urls = {s.name: self.backend.service_url(s.name) for s in self.services}
        for dep in self.dependencies:
            port = urlsplit(self.backend.service_url(dep.name)).port
            if dep.kind == "postgres":
                self._reached[dep.name] = (
                    DependencyKind.POSTGRES,
                    f"postgresql://heisen:heisen@{LOOPBACK}:{port}/heisen",
                )
            else:
                self._reached[dep.name] = (DependencyKind.REDIS, f"redis://{LOOPBACK}:{port}/0")

    def _init_dependencies(self) -> None:
        from heisen.oracle import probes

        for name, dep in self.pipeline.dependencies.items():
            if dep.init:
                self._log(f"running {dep.init} on {name} in the cluster")
                sql = self.loaded.resolve(dep.init).read_text(encoding="utf-8")
                try:
                    probes.run_setup_sql(self.dependency_address(name), sql)
                except SystemUnavailable as exc:
                    raise SystemUnavailable(
                        f"cannot initialise {name} in the cluster through a port-forward: {exc}"
                    ) from exc

    def stop(self) -> list[TeardownProblem]:
        """Delete the namespace and close the tunnels; what failed is returned.

        Signals are ignored meanwhile, so a second Ctrl-C cannot leave the namespace behind.
        """
        from heisen._interrupts import signals_shielded

        if not self._touched:
            return []
        self._touched = False
        problems: list[TeardownProblem] = []
        with signals_shielded():
            self._log(f"deleting namespace {self.namespace}")
            try:
                self.backend.delete_namespace()
            except Exception as exc:
                problems.append(TeardownProblem.of(f"namespace {self.namespace}", exc))
            for what, close in (
                ("port-forwards", self.backend.close),
                ("Kubernetes API client", self.backend.close_client),
            ):
                try:
                    close()
                except Exception as exc:
                    problems.append(TeardownProblem.of(what, exc))
        return problems

    def kill(self) -> None:
        """The last resort: close the tunnels; the namespace is left for `kubectl delete`."""
        self.backend.close()

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
        return parts.hostname or LOOPBACK, parts.port or 80

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
        return KubePods(self.backend, name, Enforcement("kubernetes", limits.cpu, limits.memory))

    def replica_of_peers(self, service: str | None = None) -> dict[int, int]:
        """Unknown on a cluster (a port-forward hides which pod served a connection): {}."""
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
