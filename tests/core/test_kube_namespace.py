"""The namespace a Kubernetes phase works in: a real namespace name, and never one of the
cluster's own (kube-system, kube-public, kube-node-lease, default) unless the pipeline says
`allow_namespace: true`. Checked by `heisen validate`, before anything touches a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import heisen.cli._commands  # registers the commands on the app
from heisen.cli import app
from support import heisen, write

runner = CliRunner()

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: t
services:
  app:
    command: ["{{{{ python }}}}", "app.py"]
scenario:
  requests:
    go: {{method: POST, path: /go}}
  load:
    - burst: {{requests: 10}}
phases:
{phases}
"""
CONTAIN = "  contain:\n    backend: kubernetes\n{extra}"
CHAOS = (
    "  chaos:\n    backend: kubernetes\n    selector: {{app: inventory}}\n"
    "    experiments: [{{name: kill, kind: pod-delete}}]\n{extra}"
)
SECTIONS = {"contain": CONTAIN, "chaos": CHAOS}
CLUSTER_OWN = ["kube-system", "kube-public", "kube-node-lease", "default"]


def pipeline(tmp_path: Path, phase: str, **keys: Any) -> Path:
    extra = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in keys.items())
    path = write(tmp_path, PIPELINE.format(phases=SECTIONS[phase].format(extra=extra)))
    (tmp_path / "app.py").write_text("")
    return path


def line_of(path: Path, key: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.strip().startswith(f"{key}:"))


def validate(path: Path) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["validate", str(path), "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("phase", ["contain", "chaos"])
@pytest.mark.parametrize("namespace", CLUSTER_OWN)
def test_the_clusters_own_namespaces_are_refused_at_the_namespace_key(tmp_path, phase, namespace):
    path = pipeline(tmp_path, phase, namespace=namespace)
    code, answer = validate(path)
    assert code == 2 and answer["valid"] is False
    [problem] = answer["problems"]
    assert problem["path"] == f"phases.{phase}.namespace"
    assert problem["line"] == line_of(path, "namespace")
    assert namespace in problem["message"] and "allow_namespace: true" in problem["message"]


@pytest.mark.parametrize("phase", ["contain", "chaos"])
@pytest.mark.parametrize("namespace", CLUSTER_OWN)
def test_allow_namespace_lets_a_pipeline_use_them(tmp_path, phase, namespace):
    code, answer = validate(pipeline(tmp_path, phase, namespace=namespace, allow_namespace=True))
    assert (code, answer["valid"]) == (0, True)


@pytest.mark.parametrize("phase", ["contain", "chaos"])
@pytest.mark.parametrize("namespace", ["shop", "heisen-ci", "a", "team-7", "x" * 63])
def test_a_namespace_of_its_own_needs_no_permission(tmp_path, phase, namespace):
    code, answer = validate(pipeline(tmp_path, phase, namespace=namespace))
    assert (code, answer["valid"]) == (0, True)


@pytest.mark.parametrize("phase", ["contain", "chaos"])
@pytest.mark.parametrize(
    "namespace", ["Shop", "shop_floor", "-shop", "shop-", "shop.eu", "", "x" * 64, "ünï"]
)
def test_a_namespace_that_is_not_a_dns_label_is_refused(tmp_path, phase, namespace):
    # allow_namespace only lifts the guard on the cluster's own namespaces, not the name rule
    code, answer = validate(pipeline(tmp_path, phase, namespace=namespace, allow_namespace=True))
    assert code == 2
    [problem] = answer["problems"]
    assert problem["path"] == f"phases.{phase}.namespace"
    assert "not a Kubernetes namespace name" in problem["message"]


def test_every_refusal_is_reported_at_once(tmp_path):
    text = pipeline(tmp_path, "chaos", namespace="default").read_text()
    text += "  contain:\n    backend: kubernetes\n    namespace: Kube_System\n"
    code, answer = validate(write(tmp_path, text))
    assert code == 2
    paths = sorted(problem["path"] for problem in answer["problems"])
    assert paths == ["phases.chaos.namespace", "phases.contain.namespace"]


def test_the_agent_image_defaults_to_heisens_and_can_be_named(tmp_path):
    from heisen.pipeline import load_pipeline

    default = load_pipeline(pipeline(tmp_path / "a", "contain")).pipeline.phases.contain
    named = load_pipeline(
        pipeline(tmp_path / "b", "contain", agent_image="ghcr.io/acme/heisen-agent:0.1.0")
    ).pipeline.phases.contain
    assert default is not None and default.agent_image == "heisen/agent:latest"
    assert named is not None and named.agent_image == "ghcr.io/acme/heisen-agent:0.1.0"


def test_the_command_line_exits_2_and_says_where_and_what_to_do(tmp_path):
    path = pipeline(tmp_path, "contain", namespace="kube-system")
    result = heisen("validate", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"phases.contain.namespace (line {line_of(path, 'namespace')}" in result.stderr
    assert "allow_namespace: true" in result.stderr
