"""`heisen contain --render`: kubectl-applicable YAML that round-trips through the Kubernetes client models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from contain_support import CONTAIN, heisen, write_pipeline

from heisen.contain._limits import effective_limits, format_cpu, format_memory
from heisen.pipeline import load_pipeline

MODELS = {"Namespace": "V1Namespace", "Deployment": "V1Deployment", "Service": "V1Service"}


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
        ("Deployment", "postgres"),
        ("Service", "postgres"),
        ("Deployment", "counter"),
        ("Service", "counter"),
    ]
    client = ApiClient()
    for document in documents:
        model = client.deserialize(
            json.dumps(document), MODELS[document["kind"]], "application/json"
        )
        assert client.sanitize_for_serialization(model) == document
    counter_deployment = documents[3]
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
