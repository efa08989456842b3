"""`heisen contain --render`: kubectl-applicable YAML that round-trips through the Kubernetes client models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from contain_support import CONTAIN, heisen, write_pipeline

from heisen.contain._limits import effective_limits, format_cpu, format_memory
from heisen.contain.render import PIPELINE_LABEL, render_pipeline
from heisen.pipeline import load_pipeline
from heisen.system._kube_render import AGENT_SERVICE_ACCOUNT, KIND_MODELS, init_job_names


@pytest.mark.slow
def test_render_prints_objects_the_client_models_accept(counter: Path) -> None:
    from kubernetes.client import ApiClient

    pipeline = write_pipeline(
        counter, {**CONTAIN, "namespace": "heisen-render"}, image="ghcr.io/example/counter:1"
    )
    result = heisen("contain", str(pipeline), "--render")
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Namespace", "heisen-render"),
        ("ServiceAccount", "heisen-agent"),
        ("Role", "heisen-agent"),
        ("RoleBinding", "heisen-agent"),
        ("Deployment", "postgres"),
        ("Service", "postgres"),
        ("ConfigMap", "postgres-init"),
        ("Job", "postgres-init"),
        ("Deployment", "counter"),
        ("Service", "counter"),
    ]
    client = ApiClient()
    for document in documents:
        model = client.deserialize(
            json.dumps(document), KIND_MODELS[document["kind"]], "application/json"
        )
        assert client.sanitize_for_serialization(model) == document
    counter_deployment = documents[8]
    assert counter_deployment["spec"]["replicas"] == 2
    container = counter_deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/example/counter:1"
    limits = {"cpu": "250m", "memory": "256Mi"}
    assert container["resources"] == {"requests": limits, "limits": limits}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert (
        env["DATABASE_URL"] == "postgresql://heisen:heisen@postgres.heisen-render.svc:5432/heisen"
    )
    assert env["PORT"] == "8080" and env["MODE"] == "buggy"
    assert "{{" not in result.stdout


def test_render_without_images_exits_2_naming_each_service(counter: Path) -> None:
    pipeline = write_pipeline(counter, CONTAIN)
    data = yaml.safe_load(pipeline.read_text())
    data["services"]["second"] = dict(data["services"]["counter"])
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    result = heisen("contain", str(pipeline), "--render")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    for name in ("counter", "second"):
        assert f"services.{name}.image" in result.stderr
    assert "Traceback" not in result.stderr


def test_section_limits_override_and_add_to_the_services_own(counter: Path) -> None:
    pipeline = write_pipeline(
        counter,
        {"resources": {"counter": {"cpu": "500m"}}},
        resources={"cpu": "1", "memory": "1Gi"},
    )
    limits = effective_limits(
        load_pipeline(pipeline).pipeline, load_pipeline(pipeline).pipeline.phases.contain.resources
    )
    assert {name: (format_cpu(r.cpu), format_memory(r.memory)) for name, r in limits.items()} == {
        "counter": ("500m", "1Gi")
    }
    assert format_cpu(2.0) == "2" and format_cpu(0.1) == "100m" and format_memory(1000) == "1000"


TICKETING = Path(__file__).parents[2] / "examples" / "ticketing"
PAYMENTS_IMAGE = "heisen/ticketing-payments:latest"


def ticketing_copy(directory: Path, **payments: object) -> Path:
    """The ticketing case study in `directory`, its payments dependency updated with `payments`
    (a None value removes that key)."""
    target = directory / "ticketing"
    shutil.copytree(TICKETING, target)
    pipeline = target / "pipeline.yaml"
    data = yaml.safe_load(pipeline.read_text())
    data["allow_hosts"] = ["payments.example.com"]
    data["dependencies"]["payments"].update(payments)
    for key in [k for k, v in payments.items() if v is None]:
        del data["dependencies"]["payments"][key]
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    return pipeline


def ticketing_objects(directory: Path, **payments: object) -> list[dict[str, Any]]:
    return render_pipeline(load_pipeline(ticketing_copy(directory, **payments))).objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_case_study_renders_in_the_documented_order(tmp_path: Path) -> None:
    objects = ticketing_objects(tmp_path, image=PAYMENTS_IMAGE)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Namespace", "heisen"),
        ("ServiceAccount", AGENT_SERVICE_ACCOUNT),
        ("Role", AGENT_SERVICE_ACCOUNT),
        ("RoleBinding", AGENT_SERVICE_ACCOUNT),
        ("Deployment", "postgres"),
        ("Service", "postgres"),
        ("ConfigMap", "postgres-init"),
        ("Job", "postgres-init"),
        ("Deployment", "redis"),
        ("Service", "redis"),
        ("Deployment", "payments"),
        ("Service", "payments"),
        ("Deployment", "inventory"),
        ("Service", "inventory"),
    ]
    assert init_job_names(objects) == ["postgres-init"]


def test_every_object_and_pod_template_carries_the_labels(tmp_path: Path) -> None:
    objects = ticketing_objects(tmp_path, image=PAYMENTS_IMAGE)
    expected = {PIPELINE_LABEL: "ticketing-oversell", "app.kubernetes.io/managed-by": "heisen"}
    templates = 0
    for obj in objects:
        assert expected.items() <= obj["metadata"]["labels"].items(), obj["metadata"]["name"]
        template = obj.get("spec", {}).get("template")
        if template is not None:
            templates += 1
            assert expected.items() <= template["metadata"]["labels"].items()
    assert templates == 5  # four Deployments and the init Job


def test_the_init_job_runs_the_sql_file_the_configmap_holds(tmp_path: Path) -> None:
    objects = ticketing_objects(tmp_path, image=PAYMENTS_IMAGE)
    config = by_kind(objects, "ConfigMap")["postgres-init"]
    assert config["data"] == {"schema.sql": (TICKETING / "schema.sql").read_text()}
    job = by_kind(objects, "Job")["postgres-init"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] <= 3
    assert pod["volumes"] == [{"name": "init", "configMap": {"name": "postgres-init"}}]
    container = pod["containers"][0]
    assert container["volumeMounts"][0]["mountPath"] == "/init"
    script = container["command"][-1]
    assert script.index("until pg_isready -h postgres -U heisen") < script.index("psql")
    assert "-v ON_ERROR_STOP=1 -h postgres -U heisen -d heisen -f /init/schema.sql" in script
    assert {"name": "PGPASSWORD", "value": "heisen"} in container["env"]
    postgres = by_kind(objects, "Deployment")["postgres"]
    assert container["image"] == postgres["spec"]["template"]["spec"]["containers"][0]["image"]
    # The postgres Service must not send clients to the Job's pod.
    selector = by_kind(objects, "Service")["postgres"]["spec"]["selector"]
    assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_an_http_dependency_with_an_image_runs_like_a_one_replica_service(
    tmp_path: Path,
) -> None:
    pipeline = ticketing_copy(tmp_path, image=PAYMENTS_IMAGE, health="/ready")
    data = yaml.safe_load(pipeline.read_text())
    data["dependencies"]["payments"]["env"] = {"FAILS_WITH": "{{ deps.redis.url }}"}
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    objects = render_pipeline(load_pipeline(pipeline)).objects
    payments = by_kind(objects, "Deployment")["payments"]
    assert payments["spec"]["replicas"] == 1
    container = payments["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == PAYMENTS_IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"  # an image loaded into the nodes
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert env_of(payments) == {
        "PORT": "8080",
        "FAILS_WITH": "redis://redis.heisen.svc:6379/0",
        "SEED": "42",
    }
    assert by_kind(objects, "Service")["payments"]["spec"]["ports"][0]["port"] == 8080
    inventory = env_of(by_kind(objects, "Deployment")["inventory"])
    assert inventory["PAYMENTS_URL"] == "http://payments.heisen.svc:8080"


def test_an_http_dependency_at_a_url_is_used_there_not_rendered(tmp_path: Path) -> None:
    objects = ticketing_objects(
        tmp_path, command=None, image=None, url="https://payments.example.com:8443/api"
    )
    assert "payments" not in by_kind(objects, "Deployment")
    assert "payments" not in by_kind(objects, "Service")
    inventory = env_of(by_kind(objects, "Deployment")["inventory"])
    assert inventory["PAYMENTS_URL"] == "https://payments.example.com:8443/api"


def test_a_command_dependency_without_an_image_is_a_located_problem(tmp_path: Path) -> None:
    pipeline = ticketing_copy(tmp_path, image=None)
    data = yaml.safe_load(pipeline.read_text())
    del data["services"]["inventory"]["image"]
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    line = pipeline.read_text().splitlines().index("  payments:") + 1
    result = heisen("contain", str(pipeline), "--render")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert f"dependencies.payments.image (line {line + 1}" in result.stderr
    assert "services.inventory.image" in result.stderr  # every problem at once
    assert "Traceback" not in result.stderr


def test_the_agent_may_act_in_the_run_namespace_only(tmp_path: Path) -> None:
    objects = ticketing_objects(tmp_path, image=PAYMENTS_IMAGE)
    assert not [o for o in objects if o["kind"].startswith("Cluster")]
    role = by_kind(objects, "Role")[AGENT_SERVICE_ACCOUNT]
    assert role["metadata"]["namespace"] == "heisen"
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for wanted in [
        ("", "pods", "delete"),
        ("", "pods", "watch"),
        ("", "pods/log", "get"),
        ("", "pods/exec", "create"),
        ("apps", "deployments", "list"),
        ("batch", "jobs", "get"),
        ("litmuschaos.io", "chaosengines", "create"),
        ("chaos-mesh.org", "networkchaos", "delete"),
        ("chaos-mesh.org", "stresschaos", "create"),
    ]:
        assert wanted in granted
    assert not {g for g in granted if g[2] in ("*", "update", "patch", "escalate", "bind")}
    binding = by_kind(objects, "RoleBinding")[AGENT_SERVICE_ACCOUNT]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": AGENT_SERVICE_ACCOUNT,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": AGENT_SERVICE_ACCOUNT, "namespace": "heisen"}
    ]


def test_a_database_already_running_at_a_dsn_is_used_there_not_started_in_the_cluster(
    tmp_path: Path,
) -> None:
    pipeline = ticketing_copy(tmp_path, image=PAYMENTS_IMAGE)
    data = yaml.safe_load(pipeline.read_text())
    data["allow_hosts"] += ["db.shop", "cache.shop"]
    data["dependencies"]["postgres"] = {
        "kind": "postgres",
        "dsn": "postgresql://app@db.shop:6543/app",
    }
    data["dependencies"]["redis"] = {"kind": "redis", "url": "redis://cache.shop/1"}
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    objects = render_pipeline(load_pipeline(pipeline)).objects
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {"payments", "inventory"}
    assert not by_kind(objects, "Job") and not by_kind(objects, "ConfigMap")
    env = env_of(deployments["inventory"])
    assert env["DATABASE_URL"] == "postgresql://app@db.shop:6543/app"
    assert env["REDIS_URL"] == "redis://cache.shop/1"
