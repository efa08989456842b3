"""The Kubernetes backend: rendering against the client's models, the API sequence against a
FAKE API server (kube_fake.py), and the whole path against a real cluster when one is given."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kube_fake import FakeCluster, fake_cluster

from heisen.errors import SystemUnavailable, UsageError
from heisen.system._kube import KubeBackend, RolloutStatus, parse_selector
from heisen.system._kube_render import KubeDependency, KubeService, render, render_yaml, validate

LABELS = {"heisen.dev/run": "r1"}
INVENTORY = KubeService(
    name="inventory",
    image="ghcr.io/example/inventory:1",
    replicas=3,
    port=8080,
    env={"REDIS_URL": "redis://redis.heisen-r1.svc:6379/0"},
    cpu="250m",
    memory="256Mi",
    health_path="/healthz",
    command=["python", "-m", "inventory"],
)
DEPS = [KubeDependency("postgres", "postgres"), KubeDependency("redis", "redis", "redis:7")]


def by_kind_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_render_deployments_services_and_dependencies() -> None:
    objects = render("heisen-r1", [INVENTORY], DEPS, LABELS)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds == [
        ("Namespace", "heisen-r1"),
        ("ServiceAccount", "heisen-agent"),
        ("Role", "heisen-agent"),
        ("RoleBinding", "heisen-agent"),
        ("Deployment", "postgres"),
        ("Service", "postgres"),
        ("Deployment", "redis"),
        ("Service", "redis"),
        ("Deployment", "inventory"),
        ("Service", "inventory"),
    ]
    objs = by_kind_name(objects)
    deployment = objs[("Deployment", "inventory")]
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "250m", "memory": "256Mi"},
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert {"name": "PORT", "value": "8080"} in container["env"]
    assert {"name": "REDIS_URL", "value": INVENTORY.env["REDIS_URL"]} in container["env"]
    assert container["command"] == ["python", "-m", "inventory"]
    for obj in objects:
        assert obj["metadata"]["labels"]["heisen.dev/run"] == "r1"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "heisen"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "heisen-r1"
    service = objs[("Service", "inventory")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8080
    assert (
        objs[("Deployment", "redis")]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "redis:7"
    )
    assert objs[("Service", "postgres")]["spec"]["ports"][0]["port"] == 5432
    assert (
        DEPS[0].url("heisen-r1") == "postgresql://heisen:heisen@postgres.heisen-r1.svc:5432/heisen"
    )


def test_rendered_objects_are_valid_client_models() -> None:
    from kubernetes import client as models_module
    from kubernetes.client import ApiClient

    client = ApiClient()
    models = {
        kind: getattr(models_module, f"V1{kind}")
        for kind in ("Namespace", "Deployment", "Service", "ServiceAccount", "Role", "RoleBinding")
    }
    for obj in render("heisen-r1", [INVENTORY], DEPS, LABELS):
        model = client.deserialize(
            json.dumps(obj), models[obj["kind"]].__name__, "application/json"
        )
        assert isinstance(model, models[obj["kind"]])
        assert client.sanitize_for_serialization(model) == obj
    deployment = client.deserialize(
        json.dumps(
            by_kind_name(render("ns", [INVENTORY], (), LABELS))[("Deployment", "inventory")]
        ),
        "V1Deployment",
        "application/json",
    )
    assert deployment.spec.template.spec.containers[0].resources.limits == {
        "cpu": "250m",
        "memory": "256Mi",
    }


def test_render_yaml_is_a_plain_multi_document_stream() -> None:
    text = render_yaml("heisen-r1", [INVENTORY], DEPS, LABELS)
    assert "&id" not in text and "*id" not in text  # kubectl-friendly: no YAML aliases
    assert list(yaml.safe_load_all(text)) == render("heisen-r1", [INVENTORY], DEPS, LABELS)


def test_render_reports_every_problem_at_once() -> None:
    bad = [
        KubeService("Inventory_Svc", "img", 1, 8080, cpu="lots"),
        KubeService("ok", "img", 1, 70000, memory="a lot"),
    ]
    with pytest.raises(UsageError) as caught:
        render("ns", bad, [KubeDependency("cache", "memcached")], LABELS)
    message = str(caught.value)
    for fragment in ("'Inventory_Svc'", "cpu", "port 70000", "memory", "memcached"):
        assert fragment in message


def test_validate_rejects_misspelt_and_missing_fields() -> None:
    deployment = by_kind_name(render("ns", [INVENTORY], (), LABELS))[("Deployment", "inventory")]
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(UsageError, match="imagePullPolicyy"):
        validate(deployment)
    del deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"]
    del deployment["spec"]["selector"]
    with pytest.raises(UsageError, match="selector"):
        validate(deployment)


def test_parse_selector() -> None:
    assert parse_selector("a=b, c==d") == {"a": "b", "c": "d"}
    with pytest.raises(UsageError):
        parse_selector("a!=b")


def test_apply_wait_kill_and_delete_against_the_fake(tmp_path: Path) -> None:
    objects = render("heisen-r1", [INVENTORY], DEPS, LABELS)
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        backend = KubeBackend(namespace="heisen-r1", labels=LABELS, kubeconfig=kubeconfig)
        backend.apply(objects)
        assert ("Deployment", "heisen-r1", "inventory") in cluster.objects
        assert ("Service", "heisen-r1", "redis") in cluster.objects

        progress: list[RolloutStatus] = []
        backend.wait_rollout(deadline_s=10, progress=progress.append, interval_s=0.01)
        inventory = [s.ready for s in progress if s.deployment == "inventory"]
        assert inventory == sorted(inventory) and inventory[-1] == 3 and len(inventory) > 1

        pods = backend.list_pods({"app.kubernetes.io/name": "inventory"})
        assert len(pods) == 3 and all(p.ready and p.phase == "Running" for p in pods)
        assert len(backend.list_pods()) == 5  # 3 + postgres + redis

        deleted = backend.delete_pod(pods[0].name)
        assert deleted == [pods[0].name]
        after = {p.name for p in backend.list_pods("app.kubernetes.io/name=inventory")}
        assert pods[0].name not in after and len(after) == 3  # the "controller" replaced it
        assert len(backend.delete_pod({"app.kubernetes.io/name": "redis"})) == 1
        assert ("DELETE", f"/api/v1/namespaces/heisen-r1/pods/{pods[0].name}") in cluster.requests

        backend.apply(objects)  # a second apply patches what exists
        assert (
            "PATCH",
            "/apis/apps/v1/namespaces/heisen-r1/deployments/inventory",
        ) in cluster.requests

        assert backend.delete_namespace() is True
        assert not [k for k in cluster.objects if k[1] == "heisen-r1"]
        assert backend.delete_namespace() is False

        touched = {path for _, path in cluster.requests}
        assert all("heisen-r1" in path or path == "/api/v1/namespaces" for path in touched)


def test_blast_radius_is_the_namespace_and_the_labels(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        backend = KubeBackend(namespace="heisen-r1", labels=LABELS, kubeconfig=kubeconfig)
        with pytest.raises(UsageError, match="outside namespace"):
            backend.apply(render("elsewhere", [INVENTORY], (), LABELS)[1:])
        with pytest.raises(UsageError, match="refusing to touch namespace"):
            backend.apply(render("elsewhere", [INVENTORY], (), LABELS)[:1])
        with pytest.raises(UsageError, match="lacks heisen's labels"):
            backend.apply(render("heisen-r1", [INVENTORY], (), {"heisen.dev/run": "other"}))
        assert cluster.requests == []  # nothing was sent before the checks failed

        backend.apply(render("heisen-r1", [INVENTORY], (), LABELS))
        foreign = dict(cluster.objects[next(k for k in cluster.objects if k[0] == "Pod")])
        foreign = json.loads(json.dumps(foreign))
        foreign["metadata"]["name"], foreign["metadata"]["labels"] = (
            "someone-elses",
            {"app": "theirs"},
        )
        cluster.objects[("Pod", "heisen-r1", "someone-elses")] = foreign
        assert "someone-elses" not in {p.name for p in backend.list_pods()}
        with pytest.raises(UsageError, match="does not carry heisen's labels"):
            backend.delete_pod("someone-elses")
        backend.delete_pod({"app": "theirs"})  # the selector is ANDed with heisen's labels
        assert ("Pod", "heisen-r1", "someone-elses") in cluster.objects

        cluster.objects[("Namespace", "", "heisen-r1")]["metadata"]["labels"] = {}
        with pytest.raises(UsageError, match="did not create it"):
            backend.delete_namespace()


def test_rollout_deadline_and_api_errors_are_system_unavailable(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_, kubeconfig):
        backend = KubeBackend(namespace="missing", labels=LABELS, kubeconfig=kubeconfig)
        with pytest.raises(
            SystemUnavailable, match=r"refused to list deployments in missing: 404.*not found"
        ):
            backend.wait_rollout(deadline_s=1)
        backend = KubeBackend(namespace="heisen-r1", labels=LABELS, kubeconfig=kubeconfig)
        backend.apply(render("heisen-r1", [INVENTORY], (), LABELS))
        with pytest.raises(SystemUnavailable, match="not done after 0s: inventory 1/3 ready"):
            backend.wait_rollout(deadline_s=0, interval_s=0.01)
    dead = KubeBackend(namespace="heisen-r1", labels=LABELS, kubeconfig=kubeconfig)
    dead._api_client.configuration.retries = 0
    with pytest.raises(SystemUnavailable, match="cannot reach the Kubernetes API"):
        dead.list_pods()
    with pytest.raises(SystemUnavailable, match="no usable kubeconfig"):
        KubeBackend(namespace="x", labels=LABELS, kubeconfig=tmp_path / "nope.yaml")


HEALTH_SERVER = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
    "h.HTTPServer(('', 8080), H).serve_forever()\n"
)


@pytest.mark.kubernetes
def test_against_a_real_cluster(tmp_path: Path) -> None:
    """Apply, roll out, read a pod's CFS counters, kill the pods, roll out again, delete."""
    from heisen.system._kube_system import CPU_STAT, parse_cpu_stat

    kubeconfig = os.environ.get("HEISEN_TEST_KUBECONFIG")
    if not kubeconfig:
        pytest.skip("HEISEN_TEST_KUBECONFIG is not set: no real cluster to test against")
    namespace = f"heisen-test-{uuid.uuid4().hex[:8]}"
    labels = {"heisen.dev/run": namespace}
    service = KubeService(
        "echo",
        "python:3.12-alpine",
        2,
        8080,
        cpu="250m",
        memory="128Mi",
        health_path="/",
        command=["python", "-c", HEALTH_SERVER],
    )
    backend = KubeBackend(namespace=namespace, labels=labels, kubeconfig=kubeconfig)
    try:
        backend.apply(render(namespace, [service], (), labels))
        backend.wait_rollout(deadline_s=300)
        pods = backend.list_pods({"app.kubernetes.io/name": "echo"})
        counters = parse_cpu_stat(backend.run_in_pod(pods[0].name, ["sh", "-c", CPU_STAT]))
        assert counters.periods >= 0
        killed = backend.delete_pod({"app.kubernetes.io/name": "echo"})
        assert len(killed) == 2
        time.sleep(1)
        backend.wait_rollout(deadline_s=300)
        assert len([p for p in backend.list_pods() if p.ready]) == 2
    finally:
        backend.delete_namespace(wait_s=60)


def test_an_existing_namespace_heisen_did_not_create_is_refused_not_taken_over(
    tmp_path: Path,
) -> None:
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        cluster.handle("POST", "/api/v1/namespaces", {"metadata": {"name": "shop"}})
        cluster.handle(
            "POST",
            "/api/v1/namespaces",
            {
                "metadata": {
                    "name": "stale",
                    "labels": {"app.kubernetes.io/managed-by": "heisen", "heisen.dev/run": "r0"},
                }
            },
        )
        cluster.requests.clear()
        shop = KubeBackend(namespace="shop", labels=LABELS, kubeconfig=kubeconfig)
        with pytest.raises(UsageError, match="shop already exists: heisen did not create it"):
            shop.apply(render("shop", [INVENTORY], (), LABELS))
        assert [m for m, _ in cluster.requests] == ["POST", "GET"]  # no PATCH, nothing else
        assert cluster.objects[("Namespace", "", "shop")]["metadata"].get("labels") is None
        stale = KubeBackend(namespace="stale", labels=LABELS, kubeconfig=kubeconfig)
        with pytest.raises(UsageError, match=r"earlier heisen run left it \(heisen.dev/run=r0\)"):
            stale.apply(render("stale", [INVENTORY], (), LABELS))


def test_jobs_are_waited_for_and_their_failures_quote_the_log(tmp_path: Path) -> None:
    from heisen.system import agent_objects

    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        cluster.job_runner = lambda job, _: (
            (1, "psql: ERROR: relation exists\n")
            if job["metadata"]["name"] == "heisen-agent-stress"
            else (0, "line one\nline two\n")
        )
        backend = KubeBackend(namespace="heisen-r1", labels=LABELS, kubeconfig=kubeconfig)
        backend.apply(render("heisen-r1", [], (), LABELS))
        backend.apply(agent_objects("heisen-r1", backend.labels, "contain", "{}", "heisen/agent:1"))
        assert list(backend.follow_job_log("heisen-agent-contain", 10)) == ["line one", "line two"]
        backend.wait_job("heisen-agent-contain", 10, interval_s=0.01)
        backend.apply(agent_objects("heisen-r1", backend.labels, "stress", "{}", "heisen/agent:1"))
        with pytest.raises(
            SystemUnavailable, match="job heisen-agent-stress failed; its log ends:\npsql: ERROR"
        ):
            backend.wait_job("heisen-agent-stress", 10, interval_s=0.01)

        cluster.job_runner = None
        backend.apply(agent_objects("heisen-r1", backend.labels, "chaos", "{}", "nope:1"))
        with cluster.lock:
            pod = next(
                o for k, o in cluster.objects.items() if k[2].startswith("heisen-agent-chaos-")
            )
            pod["status"] = {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "agent",
                        "image": "nope:1",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ImagePullBackOff"}},
                    }
                ],
            }
            cluster.objects[("Job", "heisen-r1", "heisen-agent-chaos")]["status"] = {"active": 1}
        with pytest.raises(
            SystemUnavailable, match=r"cannot start: ImagePullBackOff.*is the image built"
        ):
            list(backend.follow_job_log("heisen-agent-chaos", 10))


def test_this_runs_namespace_still_being_deleted_is_waited_for_then_made_again(
    tmp_path: Path,
) -> None:
    """contain then chaos in one namespace: the second phase finds the first's on its way out."""
    import threading

    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        backend = KubeBackend(namespace="heisen-r1", labels=LABELS, kubeconfig=kubeconfig)
        objects = render("heisen-r1", [INVENTORY], (), LABELS)
        backend.apply(objects)
        with cluster.lock:
            cluster.objects[("Namespace", "", "heisen-r1")]["status"] = {"phase": "Terminating"}

        def finish_deleting() -> None:
            time.sleep(1)
            cluster.handle("DELETE", "/api/v1/namespaces/heisen-r1", None)

        deleting = threading.Thread(target=finish_deleting)
        deleting.start()
        backend.apply(objects)
        deleting.join()
        with cluster.lock:
            namespace = cluster.objects[("Namespace", "", "heisen-r1")]
            assert namespace["status"] == {"phase": "Active"}  # made again, not the old one
            assert ("Deployment", "heisen-r1", "inventory") in cluster.objects


def test_a_log_stream_that_drops_while_the_pod_runs_is_followed_again_without_repeats(
    tmp_path: Path,
) -> None:
    from heisen.system import agent_objects

    def agent(job: dict, cluster: FakeCluster) -> tuple[int, str]:
        namespace = job["metadata"]["namespace"]
        with cluster.lock:
            pod = next(k[2] for k in cluster.objects if k[0] == "Pod" and k[1] == namespace)
            cluster.logs[(namespace, pod)] = "one\ntwo\n"  # written so far
        time.sleep(1)
        return 0, "one\ntwo\nthree\nlast, without a newline"

    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        cluster.job_runner = agent
        cluster.cut_follows = 1  # the first stream ends after what is written so far
        backend = KubeBackend(namespace="heisen-r1", labels=LABELS, kubeconfig=kubeconfig)
        backend.apply(render("heisen-r1", [], (), LABELS))
        backend.apply(agent_objects("heisen-r1", backend.labels, "contain", "{}", "heisen/agent:1"))
        lines = list(backend.follow_job_log("heisen-agent-contain", 10))
        follows = [p for m, p in cluster.requests if p.endswith("/log")]
    assert lines == ["one", "two", "three", "last, without a newline"]
    assert len(follows) == 2
