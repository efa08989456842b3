"""Chaos on Kubernetes: the objects heisen would create, and the error when no chaos engine is installed.

Every object the renders make is checked against the real CustomResourceDefinition of its kind
(tests/chaos/crds/, copied unmodified from the LitmusChaos and Chaos Mesh repositories), the way the
API server would: the served version's openAPIV3Schema, with unknown fields an error where the
server would prune them (a pruned field is a silent no-op). The cluster here is
tests/system/kube_fake.py, a FAKE API server (not Kubernetes) that serves no CRDs.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from heisen.chaos._faults import Faults
from heisen.chaos._kubernetes import (
    INSTALL_HINT,
    KubeInjector,
    detect_engine,
    object_name,
    render_chaos_engine,
    render_chaos_mesh,
)
from heisen.chaos._timeline import Timeline
from heisen.errors import SystemUnavailable, UsageError
from heisen.schema import ChaosSection, Experiment

sys.path.insert(0, str(Path(__file__).parent.parent / "system"))
from kube_fake import fake_cluster

CRDS = Path(__file__).parent / "crds"

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
        # the engines get the selector pod-delete uses: only pods that carry heisen's label too
        assert injector.target == {"app": "inventory", "app.kubernetes.io/managed-by": "heisen"}
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
    # found by listing in the namespace: no cluster-scoped read, so no ClusterRole needed
    assert ("GET", "/apis/litmuschaos.io/v1alpha1/namespaces/shop/chaosengines") in cluster.requests
    assert ("GET", "/apis/chaos-mesh.org/v1alpha1/namespaces/shop/networkchaos") in cluster.requests
    assert not [path for _, path in cluster.requests if "customresourcedefinitions" in path]


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


# -- the objects against the real CRDs ------------------------------------------------------

_DNS_1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_OBJECT_META = {  # what the API server checks of every object's metadata, CRD or not
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_1123_SUBDOMAIN},
        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_1123_SUBDOMAIN},
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE},
        },
    },
}
_IGNORED = ("x-kubernetes-", "allowEmptyValue")


def _draft7(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 structural schema as JSON Schema draft 7, strict where the API server prunes."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith(_IGNORED) or key == "nullable":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _draft7(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _draft7(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_draft7(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
    if "properties" in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    """The validator of `kind`'s served version (its CRD in tests/chaos/crds/)."""
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        if crd["spec"]["names"]["kind"] != kind:
            continue
        [served] = [v for v in crd["spec"]["versions"] if v["served"] and v.get("storage")]
        schema = _draft7(served["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"] = _OBJECT_META
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        group, version = crd["spec"]["group"], served["name"]
        schema["properties"]["apiVersion"] = {"const": f"{group}/{version}"}
        schema["properties"]["kind"] = {"const": kind}
        jsonschema.Draft7Validator.check_schema(schema)
        return jsonschema.Draft7Validator(schema)
    raise LookupError(f"no CRD of kind {kind} in {CRDS}")


def crd_errors(obj: dict[str, Any]) -> list[str]:
    errors = crd_validator(obj["kind"]).iter_errors(obj)
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def _experiments() -> list[Experiment]:
    made = []
    for percentage in (100, 50):
        made += [
            Experiment(
                name=f"slow-{percentage}",
                kind="pod-network-latency",
                percentage=percentage,
                attributes={"latency": 300, "jitter": 20, "correlation": 25},
            ),
            Experiment(
                name=f"lossy-{percentage}",
                kind="pod-network-loss",
                percentage=percentage,
                attributes={"loss": 30, "destination_hosts": "redis"},
            ),
            Experiment(name=f"cut-{percentage}", kind="partition", percentage=percentage),
            Experiment(
                name=f"reset-{percentage}",
                kind="reset-peer",
                percentage=percentage,
                attributes={"timeout": 100},
            ),
            Experiment(
                name=f"hog-{percentage}", kind="pod-cpu-hog", percentage=percentage, cores=2
            ),
        ]
    # a name the pipeline allows but Kubernetes does not: upper case, '_', longer than a label
    made.append(
        Experiment(name="Slow_Redis " + "x" * 300, kind="pod-network-latency", duration=2.5)
    )
    return made


def _rendered() -> list[Any]:
    cases = []
    for experiment in _experiments():
        cases.append(
            pytest.param(render_chaos_engine, experiment, id=f"litmus-{experiment.name[:20]}")
        )
        if experiment.kind != "reset-peer":  # Chaos Mesh's NetworkChaos has no reset action
            cases.append(
                pytest.param(render_chaos_mesh, experiment, id=f"mesh-{experiment.name[:20]}")
            )
    return cases


@pytest.mark.parametrize(("render", "experiment"), _rendered())
def test_every_rendered_object_is_valid_under_the_real_crd(render, experiment):
    obj = render(experiment, 7, "shop", {"app": "inventory", "tier": "api"}, LABELS)
    assert crd_errors(obj) == []
    assert obj["metadata"]["labels"] == LABELS  # the rollback finds them by these


def test_reset_peer_is_refused_by_chaos_mesh_rather_than_rendered_as_something_else():
    reset = Experiment(name="reset", kind="reset-peer")
    with pytest.raises(UsageError, match="reset-peer"):
        render_chaos_mesh(reset, 1, "shop", {"app": "inventory"}, LABELS)


@pytest.mark.parametrize(
    ("kind", "where", "misspelt"),
    [
        ("NetworkChaos", ("spec", "selector"), "labels"),  # Chaos Mesh says labelSelectors
        ("ChaosEngine", ("spec", "appinfo"), "applabels"),
        ("StressChaos", ("spec", "stressors", "cpu"), "cores"),
    ],
)
def test_a_field_the_crd_would_prune_is_an_error(kind, where, misspelt):
    experiment = Experiment(name="hog", kind="pod-cpu-hog")
    render = render_chaos_engine if kind == "ChaosEngine" else render_chaos_mesh
    obj = render(experiment, 1, "shop", {"app": "inventory"}, LABELS)
    assert crd_errors(obj) == []
    parent = obj
    for key in where:
        parent = parent[key]
    parent[misspelt] = "1"
    [error] = crd_errors(obj)
    assert error.startswith(".".join(where)) and repr(misspelt) in error


def test_object_names_are_dns_labels_and_distinct_experiments_stay_distinct():
    assert object_name("kill-one", 3) == "heisen-kill-one-3"
    odd = [
        object_name(name, 12) for name in ("Slow Redis", "slow_redis", "ü" * 80, "a" * 80, "a" * 81)
    ]
    assert len(set(odd)) == len(odd)
    for name in odd:
        assert len(name) <= 63 and name.endswith("-12")
        assert name.replace("-", "").isalnum() and name == name.lower() and name.isascii()


def test_chaos_mesh_limits_a_network_fault_to_the_destinations_like_litmus():
    lossy = Experiment(
        name="lossy",
        kind="pod-network-loss",
        attributes={"destination_hosts": "redis, postgres", "destination_ips": "10.0.0.7"},
    )
    mesh = render_chaos_mesh(lossy, 1, "shop", {"app": "inventory"}, LABELS)
    assert mesh["spec"]["externalTargets"] == ["redis", "postgres", "10.0.0.7"]
    engine = render_chaos_engine(lossy, 1, "shop", {"app": "inventory"}, LABELS)
    env = {
        e["name"]: e["value"] for e in engine["spec"]["experiments"][0]["spec"]["components"]["env"]
    }
    assert env["DESTINATION_HOSTS"] == "redis, postgres" and env["DESTINATION_IPS"] == "10.0.0.7"
    everything = render_chaos_mesh(Experiment(name="cut", kind="partition"), 1, "shop", {}, LABELS)
    assert "externalTargets" not in everything["spec"]


# -- which engine: a listing in the namespace, not the CRD ----------------------------------------


@contextmanager
def answering(statuses: dict[str, int]) -> Iterator[tuple[Any, list[str]]]:
    """An API client whose server answers GET <path> with statuses[path] (404 for the rest);
    yields it and the paths (with query) it was asked for."""
    from kubernetes import client

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            code = statuses.get(self.path.partition("?")[0], 404)
            body = {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []}
            if code != 200:
                body = {"kind": "Status", "apiVersion": "v1", "code": code, "status": "Failure"}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
    api_client = client.ApiClient(configuration)
    try:
        yield api_client, seen
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


ENGINES = "/apis/litmuschaos.io/v1alpha1/namespaces/shop/chaosengines"
NETWORK_CHAOS = "/apis/chaos-mesh.org/v1alpha1/namespaces/shop/networkchaos"


@pytest.mark.parametrize(
    ("statuses", "engine"),
    [
        ({ENGINES: 200, NETWORK_CHAOS: 200}, "litmus"),
        ({NETWORK_CHAOS: 200}, "chaos-mesh"),
    ],
)
def test_the_engine_is_the_first_whose_objects_the_namespace_lists(statuses, engine):
    with answering(statuses) as (api_client, seen):
        assert detect_engine(api_client, "shop") == engine
    assert all("limit=1" in path for path in seen)
    assert [path.partition("?")[0] for path in seen] == [ENGINES, NETWORK_CHAOS][: len(seen)]


def test_neither_engine_listed_says_what_to_install():
    with answering({}) as (api_client, seen):
        with pytest.raises(SystemUnavailable) as caught:
            detect_engine(api_client, "shop")
    assert str(caught.value) == INSTALL_HINT and len(seen) == 2


@pytest.mark.parametrize("forbidden", [ENGINES, NETWORK_CHAOS])
def test_a_forbidden_listing_names_the_permission_it_lacks(forbidden):
    with answering({forbidden: 403}) as (api_client, _):
        with pytest.raises(SystemUnavailable) as caught:
            detect_engine(api_client, "shop")
    group, plural = forbidden.split("/")[2], forbidden.split("/")[-1]
    message = str(caught.value)
    assert "403" in message and f"{plural}.{group}" in message
    assert "namespace shop" in message and "list" in message


def test_an_unreachable_api_is_system_unavailable_not_a_client_traceback():
    from kubernetes import client

    with answering({}) as (api_client, _):
        host = api_client.configuration.host  # a port that was listening and no longer is
    configuration = client.Configuration(host=host)
    configuration.retries = 0
    unreachable = client.ApiClient(configuration)
    try:
        with pytest.raises(SystemUnavailable, match="cannot reach the Kubernetes API at"):
            detect_engine(unreachable, "shop")
    finally:
        unreachable.close()


def test_on_heisens_own_namespace_chaos_mesh_comes_first():
    with answering({ENGINES: 200, NETWORK_CHAOS: 200}) as (api_client, seen):
        assert detect_engine(api_client, "shop", chaos_mesh_first=True) == "chaos-mesh"
    assert [path.partition("?")[0] for path in seen] == [NETWORK_CHAOS]


def _injector_on(api_client: Any, tmp_path: Path) -> KubeInjector:
    """An injector on heisen's own system (as in the agent), through `api_client`'s server."""
    from heisen.system import KubeBackend

    kubeconfig = tmp_path / "kubeconfig.json"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": api_client.configuration.host}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    backend = KubeBackend(namespace="shop", labels={}, kubeconfig=kubeconfig)
    section = ChaosSection(backend="kubernetes", namespace="shop", experiments=[LATENCY])
    timeline = Timeline()
    return KubeInjector(section, Faults(timeline), timeline, backend=backend)


def test_litmus_without_its_chaos_experiment_in_heisens_namespace_is_an_error(tmp_path):
    with answering({ENGINES: 200}) as (api_client, seen):
        injector = _injector_on(api_client, tmp_path)
        with pytest.raises(SystemUnavailable) as caught:
            injector.check(LATENCY)
    message = str(caught.value)
    assert "no ChaosExperiment pod-network-latency in namespace shop" in message
    assert "install Chaos Mesh instead" in message and "pod-network-latency-sa" in message
    assert (
        seen[-1]
        == "/apis/litmuschaos.io/v1alpha1/namespaces/shop/chaosexperiments/pod-network-latency"
    )


def test_a_link_fault_on_heisens_own_system_hits_only_the_links_dependency(tmp_path):
    slow_redis = Experiment(
        name="slow-redis",
        kind="pod-network-latency",
        link="inventory->redis",
        attributes={"latency": 10},
    )
    with answering({}) as (api_client, _):
        injector = _injector_on(api_client, tmp_path)
        target = injector.target_of(slow_redis)
        limited = injector.with_link_destination(slow_redis)
    assert target == {
        "app.kubernetes.io/name": "inventory",
        "app.kubernetes.io/managed-by": "heisen",
    }
    assert limited.attributes["destination_hosts"] == "redis"
    mesh = render_chaos_mesh(limited, 1, "shop", target, LABELS)
    assert mesh["spec"]["externalTargets"] == ["redis"]
    engine = render_chaos_engine(limited, 1, "shop", target, LABELS)
    env = {
        e["name"]: e["value"] for e in engine["spec"]["experiments"][0]["spec"]["components"]["env"]
    }
    assert env["DESTINATION_HOSTS"] == "redis"
