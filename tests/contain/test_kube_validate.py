"""`heisen contain --render` of the ticketing case study passes `kubernetes-validate --strict`.

Strict validation checks every object against the OpenAPI schemas of a
Kubernetes release with unknown fields refused: what `kubectl apply
--validate=strict` would say, without a cluster. It runs for the three newest
minor versions the installed kubernetes-validate ships schemas for.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from contain_support import heisen

TICKETING = Path(__file__).parents[2] / "examples" / "ticketing"


def newest_minor_versions(count: int = 3) -> list[str]:
    """The newest release of each of the `count` newest minor versions with schemas."""
    from kubernetes_validate.utils import all_versions, major_minor

    newest: dict[str, str] = {}
    for version in all_versions():  # oldest first; each version is listed once per schema flavour
        newest[major_minor(version)] = version
    return list(newest.values())[-count:]


def strict_errors(objects: list[dict[str, Any]], version: str) -> list[str]:
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']} {obj['metadata']['name']}: {exc.message}")
    return errors


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    target = tmp_path_factory.mktemp("render") / "ticketing"
    shutil.copytree(TICKETING, target)
    pipeline = target / "pipeline.yaml"
    data = yaml.safe_load(pipeline.read_text())
    data["dependencies"]["payments"]["image"] = "heisen/ticketing-payments:latest"
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    result = heisen("contain", str(pipeline), "--render")
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


def test_schemas_for_three_minor_versions_are_installed() -> None:
    versions = newest_minor_versions()
    assert len(versions) == 3
    assert len({v.rsplit(".", 1)[0] for v in versions}) == 3


@pytest.mark.parametrize("version", newest_minor_versions())
def test_the_rendered_case_study_passes_strict_validation(
    rendered: list[dict[str, Any]], version: str
) -> None:
    assert {obj["kind"] for obj in rendered} == {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "ConfigMap",
        "Job",
    }
    assert strict_errors(rendered, version) == []


def test_strict_validation_refuses_a_misspelt_field(rendered: list[dict[str, Any]]) -> None:
    job = copy.deepcopy(next(obj for obj in rendered if obj["kind"] == "Job"))
    job["spec"]["backofLimit"] = job["spec"].pop("backoffLimit")
    errors = strict_errors([job], newest_minor_versions()[-1])
    assert len(errors) == 1 and "backofLimit" in errors[0]
