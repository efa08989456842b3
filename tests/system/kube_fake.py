"""A FAKE Kubernetes API server for tests: not Kubernetes, a stand-in for a few endpoints.

It answers, on 127.0.0.1, the handful of calls heisen's KubeBackend makes
(namespaces, deployments, services, pods, nodes: create, get, list, patch,
delete) with plausible JSON, so the real `kubernetes` client can be pointed
at it through a generated kubeconfig. It plays a tiny controller too: a
Deployment gets `replicas` pods carrying its template labels, a deleted pod
is replaced by a new one, and a Deployment's ready count climbs by one per
read so a rollout is seen progressing. A Job gets one pod; it succeeds at
once with an empty log, unless the test sets `job_runner`: then the pod runs
while that callable does (on a thread: the real agent, say, as a subprocess)
and its output is the pod's log. Every request is recorded, so tests assert
on what the "cluster" was asked to do.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_ROUTES = [
    (re.compile(r"^/api/v1/(?P<kind>namespaces)(?:/(?P<name>[^/]+))?$"), "Namespace"),
    (re.compile(r"^/api/v1/(?P<kind>nodes)(?:/(?P<name>[^/]+))?$"), "Node"),
    (
        re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments(?:/(?P<name>[^/]+))?$"),
        "Deployment",
    ),
    (re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services(?:/(?P<name>[^/]+))?$"), "Service"),
    (re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log$"), "PodLog"),
    (re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(?:/(?P<name>[^/]+))?$"), "Pod"),
    (
        re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/configmaps(?:/(?P<name>[^/]+))?$"),
        "ConfigMap",
    ),
    (
        re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/serviceaccounts(?:/(?P<name>[^/]+))?$"),
        "ServiceAccount",
    ),
    (
        re.compile(r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs(?:/(?P<name>[^/]+))?$"),
        "Job",
    ),
    (
        re.compile(
            r"^/apis/rbac.authorization.k8s.io/v1/namespaces/(?P<ns>[^/]+)/roles(?:/(?P<name>[^/]+))?$"
        ),
        "Role",
    ),
    (
        re.compile(
            r"^/apis/rbac.authorization.k8s.io/v1/namespaces/(?P<ns>[^/]+)/rolebindings"
            r"(?:/(?P<name>[^/]+))?$"
        ),
        "RoleBinding",
    ),
]
_API_VERSION = {
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
}
# (the Job, the cluster) -> (exit code, log): what a Job's pod does
JobRunner = Callable[[dict[str, Any], "FakeCluster"], tuple[int, str]]


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeCluster:
    """The fake's state: objects by (kind, namespace, name), and the requests seen."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.job_runner: JobRunner | None = None
        self.logs: dict[tuple[str, str], str] = {}  # (namespace, pod) -> its log so far
        self.cut_follows = 0  # this many follow requests end at once, as a dropped stream does
        self._finished: dict[tuple[str, str], threading.Event] = {}
        self.lock = threading.RLock()
        self._serial = itertools.count(1)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "fake-node"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]},
        }
        self.objects[("Node", "", "fake-node")] = node

    # -- the tiny controller ------------------------------------------------------------

    def _new_pod(self, deployment: dict[str, Any]) -> None:
        ns = deployment["metadata"]["namespace"]
        name = f"{deployment['metadata']['name']}-{next(self._serial):05d}"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        self.objects[("Pod", ns, name)] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": dict(deployment["spec"]["template"]["metadata"]["labels"]),
            },
            "spec": {"containers": [{"name": container["name"], "image": container["image"]}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "fake",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {}},
                    }
                ],
            },
        }

    def reconcile(self) -> None:
        for (kind, ns, _), deployment in list(self.objects.items()):
            if kind != "Deployment":
                continue
            selector = deployment["spec"]["selector"]["matchLabels"]
            pods = [
                key
                for key, obj in self.objects.items()
                if key[0] == "Pod"
                and key[1] == ns
                and all(obj["metadata"]["labels"].get(k) == v for k, v in selector.items())
            ]
            want = deployment["spec"].get("replicas", 1)
            for _ in range(want - len(pods)):
                self._new_pod(deployment)
            for key in pods[want:]:
                del self.objects[key]

    def _start_job(self, job: dict[str, Any]) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        template = job["spec"]["template"]
        pod_name = f"{name}-{next(self._serial):05d}"
        container = template["spec"]["containers"][0]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": {**template["metadata"].get("labels", {}), "job-name": name},
            },
            "spec": {"containers": [{"name": container["name"], "image": container["image"]}]},
            "status": {"phase": "Running"},
        }
        self.objects[("Pod", ns, pod_name)] = pod
        job["status"] = {"active": 1}
        done = self._finished[(ns, pod_name)] = threading.Event()
        self.logs[(ns, pod_name)] = ""

        def run() -> None:
            code, log = self.job_runner(job, self) if self.job_runner else (0, "")
            with self.lock:
                self.logs[(ns, pod_name)] = log
                pod["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
                job["status"] = (
                    {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
                    if code == 0
                    else {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}
                )
            done.set()

        if self.job_runner is None:
            run()
        else:
            threading.Thread(target=run, name=f"fake-job-{name}", daemon=True).start()

    def _pod_log(self, ns: str, pod: str, query: dict[str, str]) -> tuple[int, Any]:
        if ("Pod", ns, pod) not in self.objects:
            return 404, _status(404, "NotFound", f'pods "{pod}" not found')
        finished = self._finished.get((ns, pod))
        if query.get("follow") == "true" and self.cut_follows > 0:
            self.cut_follows -= 1
        elif query.get("follow") == "true" and finished is not None:
            self.lock.release()  # the job's thread needs the lock to finish
            try:
                finished.wait(timeout=300)
            finally:
                self.lock.acquire()
        text = self.logs.get((ns, pod), "")
        if "tailLines" in query:
            text = "\n".join(text.splitlines()[-int(query["tailLines"]) :])
        return 200, text

    def _status_read(self, deployment: dict[str, Any]) -> None:
        want = deployment["spec"].get("replicas", 1)
        status = deployment.setdefault("status", {})
        ready = min(want, status.get("readyReplicas", 0) + 1)
        status.update(
            observedGeneration=deployment["metadata"]["generation"],
            replicas=want,
            updatedReplicas=want,
            readyReplicas=ready,
            availableReplicas=ready,
        )

    # -- requests --------------------------------------------------------------------

    def handle(self, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append((method, parts.path))
            for pattern, kind in _ROUTES:
                match = pattern.match(parts.path)
                if match:
                    groups = match.groupdict()
                    ns = groups.get("ns") or ""
                    result = self._dispatch(method, kind, ns, groups.get("name"), body, query)
                    self.reconcile()
                    return result
        return 404, _status(404, "NotFound", f"the fake does not serve {parts.path}")

    def _dispatch(
        self,
        method: str,
        kind: str,
        ns: str,
        name: str | None,
        body: dict[str, Any] | None,
        query: dict[str, str],
    ) -> tuple[int, Any]:
        if ns and kind != "Namespace" and ("Namespace", "", ns) not in self.objects:
            return 404, _status(404, "NotFound", f'namespaces "{ns}" not found')
        if name is None and method == "GET":
            items = [
                copy.deepcopy(obj)
                for (k, n, _), obj in sorted(self.objects.items())
                if k == kind
                and n == ns
                and _matches(obj["metadata"].get("labels") or {}, query.get("labelSelector"))
            ]
            if kind == "Deployment":
                for item in items:
                    self._status_read(self.objects[(kind, ns, item["metadata"]["name"])])
                items = [
                    copy.deepcopy(self.objects[(kind, ns, i["metadata"]["name"])]) for i in items
                ]
            return 200, {
                "apiVersion": _API_VERSION.get(kind, "v1"),
                "kind": f"{kind}List",
                "metadata": {},
                "items": items,
            }
        if name is None and method == "POST":
            assert body is not None
            key = (kind, ns, body["metadata"]["name"])
            if key in self.objects:
                return 409, _status(
                    409, "AlreadyExists", f'{kind.lower()}s "{key[2]}" already exists'
                )
            obj = copy.deepcopy(body)
            obj["metadata"].update(
                uid=f"uid-{next(self._serial)}", generation=1, resourceVersion="1"
            )
            if kind == "Service":
                obj["spec"]["clusterIP"] = f"10.43.0.{next(self._serial) % 250}"
                for port in obj["spec"]["ports"]:
                    if obj["spec"].get("type") == "NodePort":
                        port["nodePort"] = 30000 + next(self._serial) % 2000
            if kind == "Namespace":
                obj["status"] = {"phase": "Active"}
            self.objects[key] = obj
            if kind == "Job":
                self._start_job(obj)
            return 201, copy.deepcopy(obj)
        if kind == "PodLog":
            return self._pod_log(ns, name or "", query)
        key = (kind, ns, name or "")
        if key not in self.objects:
            return 404, _status(404, "NotFound", f'{kind.lower()}s "{name}" not found')
        obj = self.objects[key]
        if method == "GET":
            if kind == "Deployment":
                self._status_read(obj)
            return 200, copy.deepcopy(obj)
        if method == "PATCH":
            assert body is not None
            _merge(obj, body)
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            return 200, copy.deepcopy(obj)
        if method == "DELETE":
            del self.objects[key]
            if kind == "Namespace":
                for other in [k for k in self.objects if k[1] == name]:
                    del self.objects[other]
                return 200, {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "metadata": {},
                    "status": "Success",
                }
            return 200, copy.deepcopy(obj)
        return 405, _status(405, "MethodNotAllowed", f"{method} is not served by the fake")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        code, payload = self.server.cluster.handle(self.command, self.path, body)  # type: ignore[attr-defined]
        text = isinstance(payload, str)
        data = payload.encode() if text else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def fake_cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    """Serve a FakeCluster on 127.0.0.1; yields it and a kubeconfig file that points at it."""
    cluster = FakeCluster()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.cluster = cluster  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="fake-kube-api", daemon=True)
    thread.start()
    kubeconfig = tmp_path / "fake-kubeconfig.yaml"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "fake",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    try:
        yield cluster, kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def addresses_here(system: Any) -> dict[str, Any]:
    """Where a system started on this machine (a SystemHandle) is, as an agent's plan says it."""
    return {
        "services": {name: system.service_url(name) for name in system.pipeline.services},
        "dependencies": {
            name: [dep.kind.value, system.dependency_address(name)]
            for name, dep in system.pipeline.dependencies.items()
        },
    }


def agent_here(
    addresses: dict[str, Any],
    work: Path,
    *,
    kubeconfig: Path | None = None,
    release: threading.Event | None = None,
) -> JobRunner:
    """A job runner that runs heisen's real agent on this machine for the agent's Jobs.

    The plan comes from the Job's ConfigMap, as in a pod; only its addresses are replaced
    by `addresses` (servers on this machine, where a pod would use cluster addresses), and
    the agent reaches the API through `kubeconfig` (the fake's) instead of a service account.
    Other Jobs (a dependency's init:) succeed at once. `release`, if given, holds the agent
    back until it is set.
    """

    def run(job: dict[str, Any], cluster: FakeCluster) -> tuple[int, str]:
        name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
        if not name.startswith("heisen-agent-"):
            return 0, ""
        config_map = job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        with cluster.lock:
            data = cluster.objects[("ConfigMap", namespace, config_map)]["data"]["plan.json"]
        plan = json.loads(data)
        plan["addresses"] = addresses
        plan["in_cluster"] = False
        plan["kubeconfig"] = str(kubeconfig) if kubeconfig else None
        path = work / f"{name}.json"
        path.write_text(json.dumps(plan))
        if release is not None:
            release.wait(60)
        done = subprocess.run(
            [sys.executable, "-m", "heisen", "agent", "--plan", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "NO_COLOR": "1"},
        )
        return done.returncode, done.stdout + done.stderr

    return run
