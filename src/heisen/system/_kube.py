"""The Kubernetes backend: apply rendered objects, wait for them, read and kill pods.

Blast radius: a KubeBackend touches one namespace and, in it, only objects
that carry all of its labels. `apply()` refuses objects outside them,
`list_pods()` and `delete_pod()` add the labels to every selector (a pod
named directly is read first and must carry them), and `delete_namespace()`
deletes the namespace only when it carries them too (heisen created it).

Nothing here opens a tunnel to a pod: the load runs inside the cluster (the
agent), and what heisen reads back comes through the API (a pod's log, a
command run in a pod).

The official `kubernetes` client is imported here only, and lazily.
Client errors are translated at this boundary: an API error or an
unreachable API server becomes SystemUnavailable, saying what was being done.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from heisen.errors import SystemUnavailable, UsageError
from heisen.system._kube_render import KIND_MODELS, MANAGED_BY

T = TypeVar("T")
Progress = Callable[["RolloutStatus"], None]
JOB_NAME_LABEL = "job-name"
NAMESPACE_GONE_DEADLINE_S = 120.0
LOG_RECONNECTS = 5  # times a pod's log is followed again after its stream ended early  # a namespace's deletion waits for its pods to stop  # what the Job controller puts on the pods it makes


@dataclass(frozen=True, slots=True)
class _Kind:
    """How the client creates and patches one kind of object."""

    api: str  # "core" | "apps" | "batch" | "rbac"
    noun: str  # create_namespaced_<noun> / patch_namespaced_<noun>
    patchable: bool = True  # a Job's pod template cannot change: an existing one is kept


_KINDS = {
    "Namespace": _Kind("core", "namespace"),
    "Deployment": _Kind("apps", "deployment"),
    "Service": _Kind("core", "service"),
    "ConfigMap": _Kind("core", "config_map"),
    "ServiceAccount": _Kind("core", "service_account"),
    "Job": _Kind("batch", "job", patchable=False),
    "Role": _Kind("rbac", "role"),
    "RoleBinding": _Kind("rbac", "role_binding"),
}


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
        in_cluster: bool = False,
    ) -> None:
        from kubernetes import client  # lazy: heisen --help must not import kubernetes

        self.namespace = namespace
        self.labels = {**MANAGED_BY, **labels}
        self._api_client = _api_client(kubeconfig, context, in_cluster)
        self._core = client.CoreV1Api(self._api_client)
        self._apps = client.AppsV1Api(self._api_client)
        self._batch = client.BatchV1Api(self._api_client)
        self._rbac = client.RbacAuthorizationV1Api(self._api_client)
        # The client's stream() swaps its ApiClient's call_api while it runs, so commands in
        # pods get an ApiClient of their own (no other call sees the swap), one at a time.
        self._streams = client.CoreV1Api(client.ApiClient(self._api_client.configuration))
        self._stream_lock = threading.Lock()

    @property
    def api_client(self) -> Any:
        """The client's ApiClient, for the APIs this class does not wrap (custom objects)."""
        return self._api_client

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
        if kind not in _KINDS:
            raise UsageError(f"heisen does not apply objects of kind {kind!r}")

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> None:
        """Create each object, or patch it when it exists (409), in order."""
        from kubernetes.client.exceptions import ApiException

        for obj in objects:
            self._check_scope(obj)
        for obj in objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            spec = _KINDS[kind]
            model = self._api_client.deserialize(_json(obj), KIND_MODELS[kind], "application/json")
            try:
                self._writer("create", spec)(model)
            except ApiException as exc:
                if exc.status != 409:
                    raise SystemUnavailable(
                        f"Kubernetes API refused to create {kind} {name}: {exc.status} {exc.reason}"
                        + _api_message(exc)
                    ) from exc
                if kind == "Namespace":
                    if self._own_namespace_terminating():  # an earlier phase's, on its way out
                        self._call(f"create namespace {name}", self._writer("create", spec), model)
                elif spec.patchable:
                    self._call(
                        f"update {kind} {name}", self._writer("patch", spec), name, dict(obj)
                    )
            except OSError as exc:
                raise SystemUnavailable(
                    f"cannot reach the Kubernetes API at {self.host}: {exc}"
                ) from exc

    def _own_namespace_terminating(self, deadline_s: float = NAMESPACE_GONE_DEADLINE_S) -> bool:
        """An existing namespace is used only when it is this run's (heisen deletes it after);
        True when it was being deleted, once it is gone (then it is to be created again)."""
        found: Any = self._call(
            f"read namespace {self.namespace}", self._core.read_namespace, self.namespace
        )
        labels = found.metadata.labels or {}
        if all(labels.get(k) == v for k, v in self.labels.items()):
            if found.status is None or found.status.phase != "Terminating":
                return False
            if not self._namespace_gone(deadline_s):
                raise SystemUnavailable(
                    f"namespace {self.namespace} is still being deleted after {deadline_s:g}s "
                    "(an earlier phase's): try again, or name another"
                )
            return True
        if all(labels.get(k) == v for k, v in MANAGED_BY.items()):
            earlier = {k: v for k, v in labels.items() if k.startswith("heisen.dev/")}
            why = (
                f"an earlier heisen run left it ({selector_text(earlier)}): "
                f"`kubectl delete namespace {self.namespace}`, or name another"
            )
        else:
            why = (
                "heisen did not create it, and deletes the namespace it runs in afterwards: "
                "name one that does not exist yet"
            )
        raise UsageError(f"namespace {self.namespace} already exists: {why}")

    def _writer(self, verb: str, spec: _Kind) -> Callable[..., Any]:
        api = {"core": self._core, "apps": self._apps, "batch": self._batch, "rbac": self._rbac}
        if spec.noun == "namespace":
            return getattr(self._core, f"{verb}_namespace")  # type: ignore[no-any-return]
        method = getattr(api[spec.api], f"{verb}_namespaced_{spec.noun}")
        if verb == "create":
            return lambda body: method(self.namespace, body)
        return lambda name, body: method(name, self.namespace, body)

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

    # -- jobs, logs and commands in pods -------------------------------------------------

    def job_pods(self, job: str) -> list[PodInfo]:
        return self.list_pods({JOB_NAME_LABEL: job})

    def job_state(self, job: str) -> str:
        """`running`, `succeeded` or `failed` (the Job's own status: its pods may be gone)."""
        found: Any = self._call(
            f"read job {job}", self._batch.read_namespaced_job, job, self.namespace
        )
        status = found.status
        conditions = {c.type: c.status for c in (status.conditions or [])} if status else {}
        if conditions.get("Complete") == "True" or (status and (status.succeeded or 0) > 0):
            return "succeeded"
        if conditions.get("Failed") == "True":
            return "failed"
        return "running"

    def wait_job(self, job: str, deadline_s: float, interval_s: float = 1.0) -> None:
        """Return once Job `job` succeeded; SystemUnavailable (with its pod's log) if it failed."""
        deadline = time.monotonic() + deadline_s
        while True:
            state = self.job_state(job)
            if state == "succeeded":
                return
            if state == "failed":
                raise SystemUnavailable(f"job {job} failed{self._log_tail(job)}")
            self._refuse_stuck(job)
            if time.monotonic() > deadline:
                raise SystemUnavailable(
                    f"job {job} not done after {deadline_s:g}s{self._log_tail(job)}"
                )
            time.sleep(interval_s)

    def _refuse_stuck(self, job: str) -> None:
        """A pod that cannot start (no such image, bad config) will not: say so at once."""
        for pod in self.job_pods(job):
            if pod.waiting_reason in STUCK_REASONS:
                raise SystemUnavailable(
                    f"job {job}'s pod {pod.name} cannot start: {pod.waiting_reason} "
                    "(is the image built and reachable by the cluster? see docs/kubernetes.md)"
                )

    def _log_tail(self, job: str, lines: int = 20) -> str:
        pods = self.job_pods(job)
        if not pods:
            return ""
        with contextlib.suppress(SystemUnavailable):
            text = self._call(
                f"read the log of pod {pods[-1].name}",
                self._core.read_namespaced_pod_log,
                pods[-1].name,
                self.namespace,
                tail_lines=lines,
            )
            return f"; its log ends:\n{text}" if text else ""
        return ""

    def follow_job_log(
        self, job: str, start_deadline_s: float, reconnects: int = LOG_RECONNECTS
    ) -> Iterator[str]:
        """The lines the Job's pod writes, as it writes them, until the pod ends.

        A log stream that ends while the pod still runs (a proxy's idle timeout, an API
        server restart) is opened again, and the lines already seen are skipped.
        """
        pod = self._wait_job_pod_started(job, start_deadline_s)
        seen = 0
        for _ in range(reconnects + 1):
            partial: list[str] = []
            for number, line in enumerate(self._log_lines(pod, partial), start=1):
                if number > seen:
                    seen = number
                    yield line
            if self._pod_ended(pod):
                yield from partial  # a last line without its newline
                return
            time.sleep(0.5)

    def _log_lines(self, pod: str, partial: list[str]) -> Iterator[str]:
        """The complete lines of the pod's log from its start, followed; an unfinished last
        line goes to `partial`."""
        response: Any = self._call(
            f"follow the log of pod {pod}",
            self._core.read_namespaced_pod_log,
            pod,
            self.namespace,
            follow=True,
            _preload_content=False,
        )
        pending = b""
        try:
            for chunk in response.stream(4096):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", "replace")
        finally:
            response.release_conn()
        if pending:
            partial.append(pending.decode("utf-8", "replace"))

    def _pod_ended(self, pod: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            found: Any = self._core.read_namespaced_pod(pod, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise SystemUnavailable(f"cannot read pod {pod}: {exc.status} {exc.reason}") from exc
        return found.status is not None and found.status.phase in ("Succeeded", "Failed")

    def _wait_job_pod_started(self, job: str, deadline_s: float) -> str:
        deadline = time.monotonic() + deadline_s
        while True:
            self._refuse_stuck(job)
            started = [p for p in self.job_pods(job) if p.phase not in ("Pending", "Unknown")]
            if started:
                return started[-1].name
            if self.job_state(job) == "failed":
                raise SystemUnavailable(f"job {job} failed before its pod started")
            if time.monotonic() > deadline:
                raise SystemUnavailable(f"job {job}'s pod did not start within {deadline_s:g}s")
            time.sleep(0.5)

    def run_in_pod(self, pod: str, command: Sequence[str]) -> str:
        """What `command` prints in pod `pod` (as `kubectl exec`); the pod must carry our labels."""
        from kubernetes.stream import stream

        if pod not in {p.name for p in self.list_pods()}:
            raise UsageError(f"refusing to run a command in pod {pod}: it is not heisen's")
        with self._stream_lock:
            output: str = self._call(
                f"run {' '.join(command)} in pod {pod}",
                stream,
                self._streams.connect_get_namespaced_pod_exec,
                pod,
                self.namespace,
                command=list(command),
                stderr=False,
                stdin=False,
                stdout=True,
                tty=False,
            )
        return output

    # -- teardown ----------------------------------------------------------------------

    def delete_namespace(self, wait_s: float = 0.0) -> bool:
        """Delete the namespace if heisen made it (it carries heisen's labels). True if deleted."""
        from kubernetes.client.exceptions import ApiException

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
        if wait_s > 0:
            self._namespace_gone(wait_s)
        return True

    def _namespace_gone(self, wait_s: float) -> bool:
        """Whether the namespace is gone (404) within `wait_s`."""
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._core.read_namespace(self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def close_client(self) -> None:
        """Close the API clients' connections (nothing else is sent after)."""
        self._streams.api_client.close()
        self._api_client.close()

    def __enter__(self) -> KubeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_client()


STUCK_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"}
)


def _api_client(kubeconfig: Path | str | None, context: str | None, in_cluster: bool) -> Any:
    """The client for a kubeconfig, or for the pod this runs in (its service account)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if in_cluster:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration)
        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None, context=context
        )
    except (ConfigException, OSError) as exc:
        where = (
            "the pod's service account"
            if in_cluster
            else f"{kubeconfig or '~/.kube/config or $KUBECONFIG'}"
            + (f", context {context}" if context else "")
        )
        raise SystemUnavailable(f"no usable kubeconfig ({where}): {exc}") from exc


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
