"""The kubernetes backend of contain against a FAKE API server (tests/system/kube_fake.py), not a cluster.

The fake plays the API and a tiny controller. When heisen creates its agent's
Job, the fake runs the real `heisen agent` on this machine with the plan from
the Job's ConfigMap, only pointing its addresses at the counter system the
test runs here (a pod would use the Services' cluster addresses), and serves
the agent's output as the pod's log. So the whole path runs for real except
the cluster: apply → rollout → init Job → agent Job → records read back from
the log → the manifest → the namespace deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from contain_support import CONTAIN, heisen, manifest_of, write_pipeline
from kube_fake import addresses_here, agent_here, fake_cluster

from heisen.system import SystemHandle
from support import started_system, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def counter_here(
    counter: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[SystemHandle]:
    """The counter system on this machine: where the fake's agent sends its load (the
    buggy counter, or the fixed one for a test marked `fixed_counter`)."""
    if request.node.get_closest_marker("fixed_counter"):
        path = counter / "pipeline.yaml"
        path.write_text(path.read_text().replace("MODE: buggy", "MODE: fixed"))
    with started_system(counter / "pipeline.yaml", tmp_path / "here", run_id="here") as system:
        yield system


def kubernetes_pipeline(counter: Path, kubeconfig: Path, **contain: object) -> Path:
    section = {
        "backend": "kubernetes",
        "namespace": "heisen-fake",
        "kubeconfig": str(kubeconfig),
        "trials": 2,
        **contain,
    }
    return write_pipeline(counter, section, image="ghcr.io/example/counter:1")


def test_contain_runs_its_trials_in_the_agent_and_always_deletes_the_namespace_fake(
    counter: Path, counter_here: SystemHandle, tmp_path: Path
) -> None:
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        cluster.job_runner = agent_here(addresses_here(counter_here), tmp_path)
        pipeline = kubernetes_pipeline(counter, kubeconfig)
        run_dir = tmp_path / "run"
        result = heisen("contain", str(pipeline), "--run-dir", str(run_dir))
        requests = list(cluster.requests)
        objects = dict(cluster.objects)
    assert result.returncode in (0, 1), result.stderr
    created = [path.rsplit("/", 1)[-1] for method, path in requests if method == "POST"]
    assert created == [
        "namespaces",
        "serviceaccounts",
        "roles",
        "rolebindings",
        "deployments",  # postgres
        "services",
        "configmaps",  # its init: SQL
        "jobs",  # postgres-init, waited for before the agent starts
        "deployments",  # counter
        "services",
        "configmaps",  # the agent's plan
        "jobs",  # the agent
    ]
    assert ("GET", "/apis/batch/v1/namespaces/heisen-fake/jobs/postgres-init") in requests
    assert any(path.endswith("/log") for _, path in requests)
    assert requests[-1] == ("DELETE", "/api/v1/namespaces/heisen-fake")
    assert [key for key in objects if "heisen-fake" in (key[1], key[2])] == []

    record = manifest_of(run_dir)["phases"]["contain"]
    outputs = record["outputs"]
    assert record["status"] in ("passed", "failed"), record
    assert outputs["trials"] == 2 and outputs["outcomes"]["sent"] == 80
    assert outputs["bursts"]["count"] == 2 and outputs["enforcement"] == "kubernetes"
    assert outputs["namespace"] == "heisen-fake"
    assert (run_dir / "contain-load.jsonl").read_text().count("\n") == 80
    assert "contain: trial 2/2" in result.stderr or "2/2" in result.stderr


@pytest.mark.fixed_counter
def test_cpu_limits_whose_throttling_cannot_be_read_are_inconclusive_fake(
    counter: Path, counter_here: SystemHandle, tmp_path: Path
) -> None:
    """The fake serves no `exec`, so the pods' cpu.stat cannot be read: nothing shows the
    limit acted, and contain says so instead of passing (the counter is the fixed one, so no
    violation decides the phase either)."""
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        cluster.job_runner = agent_here(addresses_here(counter_here), tmp_path)
        pipeline = kubernetes_pipeline(counter, kubeconfig, resources=CONTAIN["resources"])
        run_dir = tmp_path / "run"
        result = heisen("contain", str(pipeline), "--run-dir", str(run_dir))
    record = manifest_of(run_dir)["phases"]["contain"]
    assert result.returncode == 4, result.stderr
    assert record["status"] == "inconclusive"
    assert "throttling could not be read" in record["inconclusive_reason"]
    assert record["outputs"]["limits"] == {"cpu": "250m", "memory": "256Mi"}


def test_ctrl_c_while_the_agent_runs_deletes_everything_heisen_created_fake(
    counter: Path, counter_here: SystemHandle, tmp_path: Path
) -> None:
    release = threading.Event()
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        cluster.job_runner = agent_here(addresses_here(counter_here), tmp_path, release=release)
        pipeline = kubernetes_pipeline(counter, kubeconfig)
        run_dir = tmp_path / "run"
        env = {**os.environ, "NO_COLOR": "1"}
        with subprocess.Popen(
            [sys.executable, "-m", "heisen", "contain", str(pipeline), "--run-dir", str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as run:

            def agent_running() -> bool:
                with cluster.lock:
                    return ("Job", "heisen-fake", "heisen-agent-contain") in cluster.objects

            wait_until(agent_running, timeout=60, what="the agent's job created")
            time.sleep(0.5)  # heisen is following the agent's log now
            run.send_signal(signal.SIGINT)
            _, stderr = run.communicate(timeout=60)
        release.set()
        with cluster.lock:
            left = [key for key in cluster.objects if "heisen-fake" in (key[1], key[2])]
            deleted = ("DELETE", "/api/v1/namespaces/heisen-fake") in cluster.requests
    assert run.returncode == 130, stderr
    assert deleted and left == []
    manifest = manifest_of(run_dir)
    assert manifest["status"] == "interrupted"
    assert manifest["phases"]["contain"]["error"]["type"] == "Interrupted"


def test_kubernetes_backend_without_an_image_is_a_usage_error(
    counter: Path, tmp_path: Path
) -> None:
    pipeline = write_pipeline(counter, {**CONTAIN, "backend": "kubernetes"})
    result = heisen("contain", str(pipeline), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert "services.counter.image" in result.stderr


def test_the_rendered_pipeline_names_the_counter_image(counter: Path) -> None:
    pipeline = write_pipeline(counter, {"backend": "kubernetes"}, image="ghcr.io/example/counter:1")
    result = heisen("contain", str(pipeline), "--render")
    assert result.returncode == 0, result.stderr
    images = {
        container["image"]
        for doc in yaml.safe_load_all(result.stdout)
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    }
    assert "ghcr.io/example/counter:1" in images
