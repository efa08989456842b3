"""Chaos on Kubernetes: the objects heisen would create, and the error when no chaos engine is installed.

The cluster here is tests/system/kube_fake.py, a FAKE API server (not Kubernetes) that serves no CRDs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from heisen.chaos._faults import Faults
from heisen.chaos._kubernetes import KubeInjector, render_chaos_engine, render_chaos_mesh
from heisen.chaos._timeline import Timeline
from heisen.errors import SystemUnavailable
from heisen.schema import ChaosSection, Experiment

sys.path.insert(0, str(Path(__file__).parent.parent / "system"))
from kube_fake import fake_cluster

LABELS = {"app.kubernetes.io/managed-by": "heisen", "heisen.dev/run": "r1"}
LATENCY = Experiment(
    name="slow",
    kind="pod-network-latency",
    duration=30,
    percentage=50,
    attributes={"latency": 300, "jitter": 20},
)


def test_chaos_engine_carries_the_litmus_tunables_and_only_the_named_pods():
    engine = render_chaos_engine(LATENCY, 2, "shop", {"app": "inventory"}, LABELS)
    assert engine["kind"] == "ChaosEngine" and engine["metadata"]["namespace"] == "shop"
    assert engine["metadata"]["name"] == "heisen-slow-2" and engine["metadata"]["labels"] == LABELS
    assert engine["spec"]["appinfo"] == {
        "appns": "shop",
        "applabel": "app=inventory",
        "appkind": "deployment",
    }
    [experiment] = engine["spec"]["experiments"]
    env = {item["name"]: item["value"] for item in experiment["spec"]["components"]["env"]}
    assert experiment["name"] == "pod-network-latency"
    assert env == {
        "TOTAL_CHAOS_DURATION": "30",
        "PODS_AFFECTED_PERC": "50",
        "SEQUENCE": "serial",
        "NETWORK_LATENCY": "300",
        "JITTER": "20",
    }


def test_network_chaos_delay_loss_partition_and_stress():
    delay = render_chaos_mesh(LATENCY, 1, "shop", {"app": "inventory"}, LABELS)
    assert delay["kind"] == "NetworkChaos" and delay["spec"]["action"] == "delay"
    assert delay["spec"]["delay"]["latency"] == "300ms" and delay["spec"]["mode"] == "fixed-percent"
    assert delay["spec"]["selector"] == {
        "namespaces": ["shop"],
        "labelSelectors": {"app": "inventory"},
    }
    loss = render_chaos_mesh(
        Experiment(name="l", kind="pod-network-loss", attributes={"loss": 30}),
        1,
        "shop",
        {"app": "inventory"},
        LABELS,
    )
    assert loss["spec"]["loss"] == {"loss": "30"} and loss["spec"]["mode"] == "all"
    cut = render_chaos_mesh(
        Experiment(name="p", kind="partition"), 1, "shop", {"app": "inventory"}, LABELS
    )
    assert cut["spec"]["action"] == "partition" and cut["spec"]["duration"] == "10s"
    hog = render_chaos_mesh(
        Experiment(name="h", kind="pod-cpu-hog", cores=2), 1, "shop", {"app": "x"}, LABELS
    )
    assert hog["kind"] == "StressChaos" and hog["spec"]["stressors"]["cpu"]["workers"] == 2


@pytest.mark.slow
def test_without_litmus_or_chaos_mesh_the_error_says_what_to_install(tmp_path):
    section = ChaosSection(
        experiments=[LATENCY], backend="kubernetes", namespace="shop", selector={"app": "inventory"}
    )
    timeline = Timeline()
    with fake_cluster(tmp_path) as (cluster, kubeconfig):
        injector = KubeInjector(section, Faults(timeline), timeline, kubeconfig=str(kubeconfig))
        with pytest.raises(SystemUnavailable) as caught:
            injector.check(LATENCY)
        injector.check(
            Experiment(name="kill", kind="pod-delete")
        )  # pod deletion needs no chaos engine
        injector.rollback()
    message = str(caught.value)
    assert (
        "LitmusChaos" in message
        and "Chaos Mesh" in message
        and "chaosengines.litmuschaos.io" in message
    )
    assert (
        "GET",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/chaosengines.litmuschaos.io",
    ) in cluster.requests


@pytest.mark.slow
def test_the_kubeconfig_is_read_beside_the_pipeline_not_where_heisen_runs(tmp_path, monkeypatch):
    from chaos_support import pipeline_copy

    from heisen.chaos._backends import injector
    from heisen.manifest import RunInfo, RunManifest
    from heisen.phase import PhaseContext
    from heisen.pipeline import load_pipeline

    with fake_cluster(tmp_path) as (_, kubeconfig):
        path = pipeline_copy(
            tmp_path,
            **{"phases:\n": f"phases:\n  contain:\n    kubeconfig: ../{kubeconfig.name}\n"},
        )
        loaded = load_pipeline(path)
        elsewhere = tmp_path / "somewhere" / "else"
        elsewhere.mkdir(parents=True)
        monkeypatch.chdir(elsewhere)
        info = RunInfo(
            id="r1",
            pipeline=str(path),
            pipeline_sha256=loaded.sha256,
            seed=5,
            started_at="now",
            heisen_version="test",
        )
        ctx = PhaseContext(
            loaded=loaded,
            manifest=RunManifest(run=info),
            system=None,
            seed=5,
            run_dir=tmp_path,
            emit=lambda event: None,
        )
        section = ChaosSection(
            experiments=[LATENCY],
            backend="kubernetes",
            namespace="shop",
            selector={"app": "inventory"},
        )
        timeline = Timeline()
        chosen = injector(ctx, section, Faults(timeline), timeline)
        server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert chosen.api_client.configuration.host == server  # type: ignore[attr-defined]
