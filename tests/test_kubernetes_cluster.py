"""The case study on a REAL cluster: contain and chaos, run by heisen's agent in the cluster.

Opt-in: set HEISEN_TEST_KUBECONFIG to a kubeconfig of a k3s, kind or Rancher
Desktop cluster where the images of docs/kubernetes.md are loaded
(heisen/agent, heisen/ticketing-inventory, heisen/ticketing-payments; set
HEISEN_TEST_AGENT_IMAGE for another agent image). Network chaos needs Chaos
Mesh or LitmusChaos: set HEISEN_TEST_CHAOS_ENGINE=1 when one is installed,
else chaos runs its pod deletions only. Nothing here runs without a cluster.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from support import ROOT, heisen, inherited_path, manifest_of

pytestmark = [pytest.mark.kubernetes, pytest.mark.slow]
KUBECONFIG = os.environ.get("HEISEN_TEST_KUBECONFIG")


@pytest.fixture
def case_study(tmp_path: Path) -> Path:
    if not KUBECONFIG:
        pytest.skip("HEISEN_TEST_KUBECONFIG is not set: no real cluster to run the case study on")
    target = tmp_path / "ticketing"
    shutil.copytree(ROOT / "examples" / "ticketing", target)
    path = target / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    run = uuid.uuid4().hex[:6]
    data["phases"]["contain"].update(
        backend="kubernetes",
        namespace=f"heisen-contain-{run}",
        kubeconfig=KUBECONFIG,
        agent_image=os.environ.get("HEISEN_TEST_AGENT_IMAGE", "heisen/agent:latest"),
    )
    chaos = data["phases"]["chaos"]
    chaos.update(backend="kubernetes", namespace=f"heisen-chaos-{run}")
    if not os.environ.get("HEISEN_TEST_CHAOS_ENGINE"):
        chaos["experiments"] = [e for e in chaos["experiments"] if e["kind"] == "pod-delete"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_phase(phase: str, pipeline: Path, run_dir: Path) -> tuple[int, str, dict]:
    """`heisen PHASE` on the cluster: its exit code, its stderr and its manifest record."""
    env = {"HOME": os.environ.get("HOME", "/tmp")}
    done = heisen(
        phase,
        str(pipeline),
        "--run-dir",
        str(run_dir),
        timeout=1200,
        path=inherited_path(),
        env=env,
    )
    return done.returncode, done.stderr, manifest_of(run_dir)["phases"][phase]


def test_the_case_study_oversells_under_limits_and_under_chaos_in_the_cluster(
    case_study: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    code, stderr, record = run_phase("contain", case_study, run_dir)
    assert code == 1 and record["status"] == "failed", stderr
    outputs = record["outputs"]
    assert outputs["enforcement"] == "kubernetes" and outputs["throttled"]["periods"] > 0
    assert outputs["trials"] >= 1 and outputs["outcomes"]["sent"] > 0

    code, stderr, record = run_phase("chaos", case_study, run_dir)
    assert code == 1, stderr  # the buggy case study oversells
    deleted = [e for e in record["outputs"]["timeline"] if "deleted pod inventory-" in e["detail"]]
    assert len(deleted) >= 2
