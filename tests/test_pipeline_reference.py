"""`heisen schema`, the editor line `heisen init` writes, and docs/pipeline.md: one source, the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
from pydantic import TypeAdapter, ValidationError
from typer.testing import CliRunner

import heisen.cli._commands  # noqa: F401  (registers the commands)
from heisen._yaml import load_yaml_file
from heisen.cli import app
from heisen.schema import Invariant, Pipeline
from heisen.schema.reference import EDITOR_LINE, SCHEMA_FILE, fields, json_schema, markdown, models
from heisen.system import ATTRIBUTE_MODELS, ToxicType

ROOT = Path(__file__).parents[1]
EXAMPLES = [
    ROOT / "examples/ticketing/pipeline.yaml",
    ROOT / "examples/ticketing/pipeline-fixed.yaml",
]
runner = CliRunner()


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json_schema()


def refusals(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The error and, under anyOf (an optional section), what each option refused."""
    return [error, *(e for sub in error.context or [] for e in refusals(sub))]


def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_docs_pipeline_md_is_what_the_models_generate():
    written = (ROOT / "docs/pipeline.md").read_text(encoding="utf-8")
    assert written == markdown(), (
        "docs/pipeline.md is stale: heisen schema --markdown > docs/pipeline.md"
    )


def test_every_key_has_a_description_and_an_example(schema):
    keys = list(fields(schema))
    assert len(keys) > 150
    bare = [f"{model}.{key}" for model, key, prop in keys if not prop.get("description")]
    unexampled = [f"{model}.{key}" for model, key, prop in keys if not prop.get("examples")]
    assert bare == [] and unexampled == []


def test_every_example_is_accepted_by_the_model_and_by_the_schema(schema):
    checked = 0
    for model in models().values():
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if field.metadata:
                annotation = Annotated[annotation, *field.metadata]
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            key = field.alias or name
            prop = schema["$defs"].get(model.__name__, schema)
            prop = next(a for a in prop.get("anyOf", [prop]) if "properties" in a)
            check = jsonschema.Draft7Validator(
                {"$defs": schema["$defs"], **prop["properties"][key]}
            )
            for example in field.examples or []:
                adapter.validate_python(example)
                assert not list(check.iter_errors(example)), f"{model.__name__}.{key}: {example!r}"
                checked += 1
    assert checked > 150


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_schema_accepts_the_example_pipelines(schema, path):
    data = load_yaml_file(path).data
    Pipeline.model_validate(data)
    assert [e.message for e in validator(schema).iter_errors(data)] == []


@pytest.mark.parametrize(
    ("where", "misspelt"),
    [((), "servcies"), (("scenario", "requests", 0), "jsn"), (("phases", "stress"), "trails")],
)
def test_the_schema_rejects_a_misspelt_key_as_the_models_do(schema, where, misspelt):
    data = load_yaml_file(EXAMPLES[0]).data
    node = data
    for part in where:  # an int: the mapping's first value (its first request)
        node = list(node.values())[part] if isinstance(part, int) else node[part]
    node[misspelt] = 1
    errors = [e for top in validator(schema).iter_errors(data) for e in refusals(top)]
    assert any(misspelt in e.message and e.validator == "additionalProperties" for e in errors)
    with pytest.raises(ValidationError, match=misspelt):
        Pipeline.model_validate(data)


def test_every_mapping_the_user_writes_refuses_unknown_keys(schema):
    objects = [schema, *schema["$defs"].values()]
    with_keys = [next((a for a in d.get("anyOf", [d]) if "properties" in a), None) for d in objects]
    assert all(d["additionalProperties"] is False for d in with_keys if d is not None)


def test_short_forms_the_models_accept_are_in_the_schema(schema):
    data = load_yaml_file(EXAMPLES[0]).data
    service = next(iter(data["services"].values()))
    service["health"] = "/ready"
    data["scenario"]["load"] = [{"burst": {"requests": 2}}, {"pause": "1s"}]
    Pipeline.model_validate(data)
    assert list(validator(schema).iter_errors(data)) == []
    service["health"] = 5
    assert list(validator(schema).iter_errors(data))
    with pytest.raises(ValidationError):
        Pipeline.model_validate(data)


def test_durations_quantities_and_shares_are_written_as_users_write_them(schema):
    data = load_yaml_file(EXAMPLES[0]).data
    data["scenario"].update(timeout="2s", unknown_outcomes="10%")
    next(iter(data["services"].values()))["resources"] = {"cpu": "250m", "memory": "256Mi"}
    assert list(validator(schema).iter_errors(data)) == []
    data["scenario"]["timeout"] = "2 fortnights"
    assert [e.json_path for e in validator(schema).iter_errors(data)] == ["$.scenario.timeout"]


def test_heisen_schema_prints_the_json_schema_and_the_reference(schema):
    printed = runner.invoke(app, ["schema"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == schema
    assert json.loads(runner.invoke(app, ["schema", "--json"]).stdout) == schema
    reference = runner.invoke(app, ["schema", "--markdown"])
    assert reference.exit_code == 0 and reference.stdout == markdown()


def test_init_points_editors_at_the_schema_it_writes_beside_the_pipeline(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    pipeline = tmp_path / "pipeline.yaml"
    assert pipeline.read_text(encoding="utf-8").splitlines()[0] == EDITOR_LINE
    written = json.loads((tmp_path / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert written == json_schema()
    assert list(validator(written).iter_errors(load_yaml_file(pipeline).data)) == []


def test_the_reference_names_every_toxic_attribute_and_history_model():
    text = markdown()
    for kind in ToxicType:
        assert f"| `{kind.value}` |" in text
        for attribute in ATTRIBUTE_MODELS[kind].model_fields:
            assert f"`{attribute}`" in text, (kind.value, attribute)
    history = Invariant.model_fields["history"].annotation
    literal = next(arg for arg in history.__args__ if getattr(arg, "__args__", None))
    for model in (*literal.__args__, "rate"):
        assert f"| `{model}`" in text
    for count in ("sent", "ok", "failed", "info", "queued", "status", "replicas"):
        assert f"| `{count}` |" in text
