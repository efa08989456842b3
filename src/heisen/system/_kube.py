"""The Kubernetes backend: apply rendered objects, wait for the rollout, reach and kill pods.

Blast radius: a KubeBackend touches one namespace and, in it, only objects
that carry all of its labels. `apply()` refuses objects outside them,
`list_pods()` and `delete_pod()` add the labels to every selector (a pod
named directly is read first and must carry them), and `delete_namespace()`
deletes the namespace only when it carries them too (heisen created it).

The official `kubernetes` client is imported here only, and lazily.
Client errors are translated at this boundary: an API error or an
unreachable API server becomes SystemUnavailable, saying what was being done.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from heisen._serialised import JsonObject
from heisen.errors import SystemUnavailable, UsageError
from heisen.system._kube_render import MANAGED_BY
from heisen.system._ports import LOOPBACK

T = TypeVar("T")
Progress = Callable[["RolloutStatus"], None]
_MODELS = {"Namespace": "V1Namespace", "Deployment": "V1Deployment", "Service": "V1Service"}


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    deployment: str
    desired: int
    updated: int
    ready: int
    available: int

    @property
    def done(self) -> bool:
        return (
            self.updated >= self.desired
            and self.ready >= self.desired
            and self.available >= self.desired
        )


@dataclass(frozen=True, slots=True)
class PodInfo:
    name: str
    phase: str
    ready: bool
    restarts: int
    labels: dict[str, str]
    waiting_reason: str | None = None


def selector_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def parse_selector(text: str) -> dict[str, str]:
    """`a=b,c=d` (equality terms only: the labels heisen adds must be ANDed in)."""
    labels: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = term.partition("=")
        if not sep or key.endswith("!"):
            raise UsageError(f"label selector term {term!r}: heisen accepts key=value terms only")
        labels[key.strip()] = value.lstrip("=").strip()
    return labels


class KubeBackend:
    """One namespace of one cluster, seen through the labels heisen put on what it made."""

    def __init__(
        self,
        *,
        namespace: str,
        labels: Mapping[str, str],
        kubeconfig: Path | str | None = None,
        context: str | None = None,
    ) -> None:
        from kubernetes import client, config  # lazy: heisen --help must not import kubernetes
        from kubernetes.config.config_exception import ConfigException

        self.namespace = namespace
        self.labels = {**MANAGED_BY, **labels}
        try:
            self._api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
        except (ConfigException, OSError) as exc:
            raise SystemUnavailable(
                f"no usable kubeconfig ({kubeconfig or '~/.kube/config or $KUBECONFIG'}"
                f"{f', context {context}' if context else ''}): {exc}"
            ) from exc
        self._core = client.CoreV1Api(self._api_client)
        self._apps = client.AppsV1Api(self._api_client)
        self._forwarders: list[_PortForwarder] = []
        # The client's portforward() swaps its ApiClient's call_api while it opens a tunnel, so
        # tunnels get an ApiClient of their own (no other call sees the swap), opened one at a time.
        self._tunnels = client.CoreV1Api(client.ApiClient(self._api_client.configuration))
        self._tunnel_lock = threading.Lock()

    @property
    def host(self) -> str:
        return str(self._api_client.configuration.host)

    # -- errors -----------------------------------------------------------------------

    def _call(self, doing: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from kubernetes.client.exceptions import ApiException, OpenApiException
        from urllib3.exceptions import HTTPError

        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            raise SystemUnavailable(
                f"Kubernetes API refused to {doing}: {exc.status} {exc.reason}" + _api_message(exc)
            ) from exc
        except OpenApiException as exc:
            raise SystemUnavailable(f"the Kubernetes client could not {doing}: {exc}") from exc
        except (HTTPError, OSError) as exc:
            raise SystemUnavailable(
                f"cannot reach the Kubernetes API at {self.host} to {doing}: {exc}"
            ) from exc

    # -- apply ---------------------------------------------------------------------------

    def _check_scope(self, obj: Mapping[str, Any]) -> None:
        metadata = obj.get("metadata", {})
        kind, name = obj.get("kind"), metadata.get("name")
        if kind == "Namespace":
            if name != self.namespace:
                raise UsageError(
                    f"refusing to touch namespace {name!r}: this run owns {self.namespace!r}"
                )
        elif metadata.get("namespace") != self.namespace:
            raise UsageError(
                f"refusing to apply {kind} {name} outside namespace {self.namespace!r}"
            )
        labels = metadata.get("labels") or {}
        missing = {k: v for k, v in self.labels.items() if labels.get(k) != v}
        if missing:
            raise UsageError(
                f"refusing to apply {kind} {name}: it lacks heisen's labels {selector_text(missing)}"
            )
        if kind not in _MODELS:
            raise UsageError(f"heisen does not apply objects of kind {kind!r}")

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> None:
        """Create each object, or patch it when it exists (409), in order."""
        from kubernetes.client.exceptions import ApiException

        for obj in objects:
            self._check_scope(obj)
        for obj in objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            model = self._api_client.deserialize(_json(obj), _MODELS[kind], "application/json")
            create, patch = self._writers(kind)
            try:
                create(model)
            except ApiException as exc:
                if exc.status != 409:
                    raise SystemUnavailable(
                        f"Kubernetes API refused to create {kind} {name}: {exc.status} {exc.reason}"
                        + _api_message(exc)
                    ) from exc
                self._call(f"update {kind} {name}", patch, name, dict(obj))
            except OSError as exc:
                raise SystemUnavailable(
                    f"cannot reach the Kubernetes API at {self.host}: {exc}"
                ) from exc

    def _writers(self, kind: str) -> tuple[Callable[[Any], Any], Callable[[str, JsonObject], Any]]:
        ns = self.namespace
        if kind == "Namespace":
            return self._core.create_namespace, lambda name, body: self._core.patch_namespace(
                name, body
            )
        if kind == "Deployment":
            return (
                lambda body: self._apps.create_namespaced_deployment(ns, body),
                lambda name, body: self._apps.patch_namespaced_deployment(name, ns, body),
            )
        return (
            lambda body: self._core.create_namespaced_service(ns, body),
            lambda name, body: self._core.patch_namespaced_service(name, ns, body),
        )

    # -- rollout -----------------------------------------------------------------------

    def rollout_status(self) -> list[RolloutStatus]:
        deployments: Any = self._call(
            f"list deployments in {self.namespace}",
            self._apps.list_namespaced_deployment,
            self.namespace,
            label_selector=selector_text(self.labels),
        )
        statuses = []
        for deployment in deployments.items:
            status, desired = deployment.status, deployment.spec.replicas or 0
            observed = status is not None and (status.observed_generation or 0) >= (
                deployment.metadata.generation or 0
            )
            statuses.append(
                RolloutStatus(
                    deployment.metadata.name,
                    desired,
                    (status.updated_replicas or 0) if observed and status else 0,
                    (status.ready_replicas or 0) if status else 0,
                    (status.available_replicas or 0) if status else 0,
                )
            )
        return statuses

    def wait_rollout(
        self, deadline_s: float, progress: Progress | None = None, interval_s: float = 1.0
    ) -> None:
        """Return once every deployment has all its replicas updated, ready and available."""
        deadline = time.monotonic() + deadline_s
        seen: dict[str, RolloutStatus] = {}
        while True:
            statuses = self.rollout_status()
            for status in statuses:
                if progress is not None and seen.get(status.deployment) != status:
                    progress(status)
                seen[status.deployment] = status
            if statuses and all(s.done for s in statuses):
                return
            if time.monotonic() > deadline:
                pending = [s for s in statuses if not s.done]
                pods = [p for p in self.list_pods() if not p.ready]
                why = "; ".join(
                    f"pod {p.name}: {p.waiting_reason or p.phase}, {p.restarts} restarts"
                    for p in pods[:5]
                )
                raise SystemUnavailable(
                    f"rollout in namespace {self.namespace} not done after {deadline_s:g}s: "
                    + ", ".join(f"{s.deployment} {s.ready}/{s.desired} ready" for s in pending)
                    + (f" ({why})" if why else "")
                )
            time.sleep(interval_s)

    # -- pods --------------------------------------------------------------------------

    def list_pods(self, selector: str | Mapping[str, str] | None = None) -> list[PodInfo]:
        """The pods in the namespace that match `selector` *and* heisen's labels."""
        wanted = parse_selector(selector) if isinstance(selector, str) else dict(selector or {})
        pods = self._call(
            f"list pods in {self.namespace}",
            self._core.list_namespaced_pod,
            self.namespace,
            label_selector=selector_text({**wanted, **self.labels}),
        )
        return [_pod_info(pod) for pod in pods.items]

    def delete_pod(self, target: str | Mapping[str, str], grace_period_s: int = 0) -> list[str]:
        """Delete one pod by name, or every pod matching a selector (`a=b` or a mapping)."""
        if isinstance(target, str) and "=" not in target:
            pod = self._call(
                f"read pod {target}", self._core.read_namespaced_pod, target, self.namespace
            )
            info = _pod_info(pod)
            if any(info.labels.get(k) != v for k, v in self.labels.items()):
                raise UsageError(
                    f"refusing to delete pod {target}: it does not carry heisen's labels"
                )
            names = [target]
        else:
            names = [p.name for p in self.list_pods(target)]
        for name in names:
            self._call(
                f"delete pod {name}",
                self._core.delete_namespaced_pod,
                name,
                self.namespace,
                grace_period_seconds=grace_period_s,
            )
        return names

    # -- reaching a service ------------------------------------------------------------

    def service_url(self, name: str, *, via: str = "port-forward") -> str:
        """An http:// URL on this machine that reaches Service `name`.

        `port-forward` (the default) listens on a loopback port and tunnels each
        connection to a ready pod of the Service through the API server, as
        `kubectl port-forward` does; `nodeport` reads the Service's nodePort and
        a node's address (the Service must be of type NodePort).
        """
        service: Any = self._call(
            f"read service {name}", self._core.read_namespaced_service, name, self.namespace
        )
        port = service.spec.ports[0]
        if via == "nodeport":
            if not port.node_port:
                raise SystemUnavailable(
                    f"service {name} has no nodePort: render it with type NodePort"
                )
            return f"http://{self._node_address()}:{port.node_port}"
        selector = dict(service.spec.selector or {})
        target = int(port.target_port if isinstance(port.target_port, int) else port.port)
        forwarder = _PortForwarder(self, selector, target)
        self._forwarders.append(forwarder)
        return f"http://{LOOPBACK}:{forwarder.start()}"

    def _node_address(self) -> str:
        nodes: Any = self._call("list nodes", self._core.list_node)
        for node in nodes.items:
            for kind in ("ExternalIP", "InternalIP"):
                for address in node.status.addresses or []:
                    if address.type == kind:
                        return str(address.address)
        raise SystemUnavailable("no node reports an address to reach a NodePort on")

    def _open_tunnel(self, selector: Mapping[str, str], port: int) -> Any:
        from kubernetes.stream import portforward

        ready = [p for p in self.list_pods(selector) if p.ready]
        if not ready:
            raise SystemUnavailable(f"no ready pod matches {selector_text(selector)}")
        with self._tunnel_lock:
            return self._call(
                f"port-forward to pod {ready[0].name}",
                portforward,
                self._tunnels.connect_get_namespaced_pod_portforward,
                ready[0].name,
                self.namespace,
                ports=str(port),
            )

    # -- teardown ----------------------------------------------------------------------

    def delete_namespace(self, wait_s: float = 0.0) -> bool:
        """Delete the namespace if heisen made it (it carries heisen's labels). True if deleted."""
        from kubernetes.client.exceptions import ApiException

        self.close()
        try:
            namespace: Any = self._core.read_namespace(self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise SystemUnavailable(
                f"Kubernetes API refused to read namespace {self.namespace}: {exc.status}"
            ) from exc
        labels = namespace.metadata.labels or {}
        if any(labels.get(k) != v for k, v in self.labels.items()):
            raise UsageError(
                f"refusing to delete namespace {self.namespace}: heisen did not create it"
            )
        self._call(
            f"delete namespace {self.namespace}", self._core.delete_namespace, self.namespace
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                self._core.read_namespace(self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    break
            time.sleep(0.5)
        return True

    def close(self) -> None:
        for forwarder in self._forwarders:
            forwarder.stop()
        self._forwarders.clear()

    def close_client(self) -> None:
        """Close the API clients' connections (after close(): nothing else is sent)."""
        self._tunnels.api_client.close()
        self._api_client.close()

    def __enter__(self) -> KubeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self.close_client()


class _PortForwarder:
    """A loopback listener; each accepted connection gets its own tunnel to a ready pod."""

    def __init__(self, backend: KubeBackend, selector: Mapping[str, str], port: int) -> None:
        self._backend, self._selector, self._port = backend, dict(selector), port
        self._listener = socket.create_server((LOOPBACK, 0))
        self._closed = threading.Event()

    def start(self) -> int:
        threading.Thread(target=self._accept, name="heisen-port-forward", daemon=True).start()
        return int(self._listener.getsockname()[1])

    def stop(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(connection,), daemon=True).start()

    def _relay(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError, SystemUnavailable):
            stream = self._backend._open_tunnel(self._selector, self._port)
            remote = stream.socket(self._port)
            remote.setblocking(False)
            with contextlib.closing(remote):
                for _ in _pump(connection, remote, self._closed):
                    pass


def _pump(local: socket.socket, remote: Any, closed: threading.Event) -> Iterator[None]:
    """Copy bytes both ways until either side closes."""
    while not closed.is_set():
        readable, _, _ = select.select([local, remote], [], [], 0.5)
        for source, sink in ((local, remote), (remote, local)):
            if source in readable:
                data = source.recv(65536)
                if not data:
                    return
                sink.sendall(data)
        yield


def _pod_info(pod: Any) -> PodInfo:
    statuses = (pod.status.container_statuses or []) if pod.status else []
    waiting = next((s.state.waiting.reason for s in statuses if s.state and s.state.waiting), None)
    conditions = (pod.status.conditions or []) if pod.status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return PodInfo(
        name=pod.metadata.name,
        phase=(pod.status.phase if pod.status else None) or "Unknown",
        ready=ready,
        restarts=sum(s.restart_count or 0 for s in statuses),
        labels=dict(pod.metadata.labels or {}),
        waiting_reason=waiting,
    )


def _api_message(exc: Any) -> str:
    import json

    with contextlib.suppress(ValueError, TypeError):
        message = json.loads(exc.body or "").get("message")
        if message:
            return f": {message}"
    return ""


def _json(obj: Mapping[str, Any]) -> str:
    import json

    return json.dumps(obj)
