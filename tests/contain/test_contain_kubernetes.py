"""The kubernetes backend of contain against a FAKE API server (tests/system/kube_fake.py), not a cluster.

The fake plays the API (create, list, rollout status, delete) but has no pods
to port-forward to, so the phase goes as far as apply → rollout → reaching
the in-cluster PostgreSQL, fails there with exit 3, and must still delete
its namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from contain_support import CONTAIN, heisen, manifest_of, write_pipeline
from kube_fake import fake_cluster

pytestmark = pytest.mark.slow


def test_kubernetes_phase_applies_rolls_out_and_always_deletes_the_namespace_fake(
    counter: Path, tmp_path: Path
) -> None:
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        contain = {
            **CONTAIN,
            "backend": "kubernetes",
            "namespace": "heisen-fake",
            "kubeconfig": str(kubeconfig),
        }
        pipeline = write_pipeline(counter, contain, image="ghcr.io/example/counter:1")
        run_dir = tmp_path / "run"
        result = heisen("contain", str(pipeline), "--run-dir", str(run_dir))
        requests = list(cluster.requests)
        objects = dict(cluster.objects)
    assert result.returncode == 3, result.stderr
    assert "rollout counter: 2/2 ready" in result.stderr
    assert "through a port-forward" in result.stderr
    created = [path for method, path in requests if method == "POST"]
    assert created == [
        "/api/v1/namespaces",
        "/apis/apps/v1/namespaces/heisen-fake/deployments",
        "/api/v1/namespaces/heisen-fake/services",
        "/apis/apps/v1/namespaces/heisen-fake/deployments",
        "/api/v1/namespaces/heisen-fake/services",
    ]
    assert ("GET", "/apis/apps/v1/namespaces/heisen-fake/deployments") in requests
    assert requests[-1] == ("DELETE", "/api/v1/namespaces/heisen-fake")
    assert [key for key in objects if key[1] == "heisen-fake" or key[2] == "heisen-fake"] == []
    record = manifest_of(run_dir)["phases"]["contain"]
    assert record["status"] == "error" and record["error"]["type"] == "SystemUnavailable"


def test_kubernetes_backend_without_an_image_is_a_usage_error(
    counter: Path, tmp_path: Path
) -> None:
    pipeline = write_pipeline(counter, {**CONTAIN, "backend": "kubernetes"})
    result = heisen("contain", str(pipeline), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert "services.counter.image" in result.stderr
