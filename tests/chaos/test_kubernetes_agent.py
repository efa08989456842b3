"""Chaos on Kubernetes runs in heisen's agent: pods deleted through the API while the load runs.

The cluster is tests/system/kube_fake.py, a FAKE API server: it plays the API
and a controller that replaces deleted pods, and runs the real `heisen agent`
(with the fake's kubeconfig, and the counter system on this machine standing
in for the Services) when heisen creates the agent's Job. The pods the
experiment deletes are the fake's, not the processes serving the load.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from heisen.system import SystemHandle
from support import COUNTER, heisen, manifest_of, started_system

sys.path.insert(0, str(Path(__file__).parent.parent / "system"))
from kube_fake import addresses_here, agent_here, fake_cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[tuple[Path, SystemHandle]]:
    root = tmp_path / "counter"
    shutil.copytree(COUNTER, root)
    with started_system(root / "pipeline.yaml", tmp_path / "here", run_id="here") as system:
        yield root, system


def test_pod_delete_runs_in_the_agent_through_the_api_and_the_namespace_goes(
    counter: tuple[Path, SystemHandle], tmp_path: Path
) -> None:
    root, system = counter
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        data = yaml.safe_load((root / "pipeline.yaml").read_text())
        data["services"]["counter"]["image"] = "ghcr.io/example/counter:1"
        data["phases"] = {
            "contain": {"kubeconfig": str(kubeconfig)},  # how heisen reaches the cluster
            "chaos": {
                "backend": "kubernetes",
                "namespace": "heisen-chaos",
                "rate": 20,
                "duration": "3s",
                "experiments": [
                    {
                        "name": "kill-counter",
                        "kind": "pod-delete",
                        "service": "counter",
                        "count": 2,
                        "interval": "1s",
                        "start": "500ms",
                        "percentage": 50,  # one of the two pods a round
                    }
                ],
                "probes": [
                    {"name": "up", "http": "GET /health", "mode": "Continuous", "interval": "0.5s"}
                ],
            },
        }
        (root / "pipeline.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        cluster.job_runner = agent_here(
            addresses_here(system),
            tmp_path,
            kubeconfig=kubeconfig,
        )
        run_dir = tmp_path / "run"
        result = heisen(
            "chaos", str(root / "pipeline.yaml"), "--run-dir", str(run_dir), timeout=180
        )
        requests = list(cluster.requests)
        objects = dict(cluster.objects)
    record = manifest_of(run_dir)["phases"]["chaos"]
    assert record["status"] in ("passed", "failed"), (record, result.stderr)
    deleted = [path for method, path in requests if method == "DELETE" and "/pods/counter-" in path]
    assert len(deleted) == 2  # one per round, each a pod of the counter Deployment
    kills = [e for e in record["outputs"]["timeline"] if "deleted pod counter-" in e["detail"]]
    assert len(kills) == 2
    assert requests[-1] == ("DELETE", "/api/v1/namespaces/heisen-chaos")
    assert [key for key in objects if "heisen-chaos" in (key[1], key[2])] == []
