"""Pipeline validation: every problem at once, each with its YAML path and line."""

from pathlib import Path

import pytest

from heisen.errors import PipelineError
from heisen.pipeline import load_pipeline
from support import COUNTER


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "schema.sql").write_text("SELECT 1;")
    (tmp_path / "app.py").write_text("")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


VALID = """\
apiVersion: heisen/v1
kind: Pipeline
name: t
dependencies:
  postgres: {kind: postgres, embedded: true, init: schema.sql}
services:
  app:
    command: ["{{ python }}", "app.py"]
    env: {DATABASE_URL: "{{ deps.postgres.dsn }}"}
    resources: {cpu: 250m, memory: 256Mi}
scenario:
  requests:
    go: {method: POST, path: /go, json: {n: "{{ i }}"}}
  load:
    - burst: {requests: 10}
invariants:
  - name: fine
    sql: SELECT 1 AS one
    expect: one == 1
phases:
  stress: {trials: 2}
"""


def problems(path: Path) -> list:
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    return info.value.problems


def test_the_counter_example_and_a_minimal_pipeline_validate(tmp_path):
    assert load_pipeline(COUNTER / "pipeline.yaml").pipeline.name == "counter-lost-update"
    loaded = load_pipeline(write(tmp_path, VALID))
    assert loaded.pipeline.services["app"].resources.cpu == 0.25
    assert loaded.pipeline.services["app"].resources.memory == 256 * 1024**2


def test_unknown_key_says_did_you_mean_and_where(tmp_path):
    found = problems(
        write(
            tmp_path,
            VALID.replace("phases:\n  stress: {trials: 2}", "phases:\n  stress: {trails: 2}"),
        )
    )
    assert len(found) == 1
    assert found[0].path == "phases.stress.trails"
    assert "did you mean 'trials'" in found[0].message
    assert found[0].line == 21


def test_all_problems_are_reported_at_once(tmp_path):
    text = (
        VALID.replace("cpu: 250m", "cpu: 250x")
        .replace("requests: 10", "requests: ten")
        .replace("init: schema.sql", "init: missing.sql")
        .replace("{{ deps.postgres.dsn }}", "{{ deps.postgress.dsn }}")
        .replace("one == 1", "one ==")
        .replace("{trials: 2}", "{trials: 2, load: [{pause: {during: 5 parsecs}}]}")
    )
    found = problems(write(tmp_path, text))
    paths = {p.path for p in found}
    assert "services.app.resources.cpu" in paths
    assert "scenario.load[0].burst.requests" in paths
    assert "phases.stress.load[0].pause.during" in paths
    assert all(p.line for p in found)


def test_semantic_problems_are_reported_together(tmp_path):
    text = (
        VALID.replace("init: schema.sql", "init: missing.sql")
        .replace("{{ deps.postgres.dsn }}", "{{ deps.postgress.dsn }}")
        .replace("one == 1", "one ==")
    )
    found = problems(write(tmp_path, text))
    messages = {p.path: p.message for p in found}
    assert "no such file: missing.sql" in messages["dependencies.postgres.init"]
    assert "postgress" in messages["services.app.env.DATABASE_URL"]
    assert "bad expression" in messages["invariants[0].expect"]
    assert len(found) == 3


def test_a_file_name_too_long_to_look_up_is_a_located_problem_not_a_crash(tmp_path):
    found = problems(write(tmp_path, VALID.replace("init: schema.sql", "init: " + "x" * 5000)))
    messages = {p.path: p.message for p in found}
    assert "cannot look for xxxx" in messages["dependencies.postgres.init"]
    assert "File name too long" in messages["dependencies.postgres.init"]


def test_python_probe_reference_must_import_and_bind(tmp_path):
    (tmp_path / "probes_ok.py").write_text("def sold(deps, trial=0):\n    return {'n': 1}\n")
    (tmp_path / "probes_bad.py").write_text("def sold(connection):\n    return 1\n")
    base = VALID.replace("    sql: SELECT 1 AS one\n", "    python: {ref}\n")
    load_pipeline(write(tmp_path, base.replace("{ref}", "probes_ok:sold")))
    found = problems(write(tmp_path, base.replace("{ref}", "probes_bad:sold")))
    assert "cannot be bound" in found[0].message
    found = problems(write(tmp_path, base.replace("{ref}", "no_such_module:x")))
    assert "cannot import" in found[0].message


def test_bad_template_syntax(tmp_path):
    found = problems(write(tmp_path, VALID.replace('"{{ i }}"', '"{{ i ** 2 }}"')))
    assert found[0].path == "scenario.requests.go.json.n"
    assert "unexpected '**'" in found[0].message


def test_unknown_request_in_load_and_link_in_isolate(tmp_path):
    text = VALID.replace("burst: {requests: 10}", "burst: {requests: 10, request: nope}").replace(
        "  stress: {trials: 2}",
        "  stress: {trials: 2}\n  isolate:\n    toxics: [{link: app->mongo, type: latency}]",
    )
    found = problems(write(tmp_path, text))
    messages = " ".join(p.message for p in found)
    assert "no request named 'nope'" in messages
    assert "app->postgres" in messages


def test_a_pipeline_must_be_a_mapping(tmp_path):
    found = problems(write(tmp_path, "- just\n- a list\n"))
    assert "mapping" in found[0].message


def test_schema_problems_and_cross_checks_are_reported_together_in_file_order(tmp_path):
    text = (
        VALID.replace("init: schema.sql", "init: missing.sql")
        .replace("    resources:", "    replicaz: 2\n    resources:")
        .replace("{method: POST, path: /go,", "{method: POST, pth: /go,")
        .replace('"{{ deps.postgres.dsn }}"', '"{{ deps.postgress.dsn }}"')
        .replace("  stress: {trials: 2}", "  stress: {trials: 2}\n  contain: {resources: {ap: {}}}")
    )
    found = problems(write(tmp_path, text))
    assert [(p.path, p.message.split(":")[0]) for p in found] == [
        ("dependencies.postgres.init", "no such file"),
        ("services.app.env.DATABASE_URL", "{{ deps.postgress.dsn }}"),
        ("services.app.replicaz", "unknown key 'replicaz'; did you mean 'replicas'?"),
        ("scenario.requests.go.path", "'path' is required here"),
        ("scenario.requests.go.pth", "unknown key 'pth'; did you mean 'path'?"),
        ("phases.contain.resources.ap", "no service named 'ap'"),
    ]
    assert [p.line for p in found] == sorted(p.line for p in found)


def test_what_the_schema_refused_raises_no_second_hand_problems(tmp_path):
    text = VALID.replace(
        "  postgres: {kind: postgres, embedded: true, init: schema.sql}",
        "  postgres: {kind: postgrez, embedded: true, init: schema.sql}",
    ).replace("    - burst: {requests: 10}", "    - burst: {requests: 10, request: go}")
    text = text.replace("{method: POST, path: /go,", "{method: 5, path: [/go],")
    found = problems(write(tmp_path, text))
    paths = [p.path for p in found]
    assert "dependencies.postgres.kind" in paths
    assert "scenario.requests.go.path" in paths
    # the dependency and the request were cut to check the rest: what names them stays quiet
    assert not any("postgres" in p.message and p.path.startswith("services") for p in found)
    assert not any(p.path.startswith("scenario.load") for p in found)
    assert not any(p.path.startswith("invariants") for p in found)


def test_faker_names_are_checked_on_provider_classes_without_calling_them(tmp_path, monkeypatch):
    from faker.providers.internet import Provider

    from heisen import _templates

    def refuse(*args, **kwargs):
        raise AssertionError("validate called a Faker provider")

    monkeypatch.setattr(Provider, "user_name", refuse)
    names = _templates.faker_provider_names()
    assert "user_name" in names and "email" in names
    assert not {"seed_instance", "seed", "binary", "format"} & names  # not providers, or bytes
    text = VALID.replace('"{{ i }}"', '"{{ faker.user_name }}"')
    assert load_pipeline(write(tmp_path, text)).pipeline.name == "t"
    found = problems(write(tmp_path, VALID.replace('"{{ i }}"', '"{{ faker.user_nme }}"')))
    assert "did you mean 'user_name'" in found[0].message


def test_template_names_starting_with_underscore_are_refused_when_rendered_too():
    from heisen import _templates

    resolve = _templates.mapping_resolver({"i": 3})
    with pytest.raises(_templates.TemplateError, match="'_'"):
        _templates.render_text("{{ i.__class__ }}", resolve)


def test_a_meaningless_load_is_refused(tmp_path):
    text = VALID.replace(
        '    go: {method: POST, path: /go, json: {n: "{{ i }}"}}',
        '    go: {method: POST, path: /go, json: {n: "{{ i }}"}}\n    other: {path: /o}',
    ).replace("burst: {requests: 10}", "burst: {requests: 10, mix: {go: 1, other: 200}}")
    found = problems(write(tmp_path, text))
    assert found[0].path == "scenario.load[0].burst"
    assert "never be sent" in found[0].message
    text = VALID.replace(
        '    go: {method: POST, path: /go, json: {n: "{{ i }}"}}',
        '    go: {method: POST, path: /go, json: {n: "{{ i }}"}}\n    other: {path: /o}',
    ).replace("{trials: 2}", "{trials: 2, load: [{pause: {during: 1s}}], sweep: {}}")
    found = problems(write(tmp_path, text))  # which of the two requests would the bursts send?
    assert [p.path for p in found] == ["scenario.load[0].burst", "phases.stress.sweep"]
    assert "say which request each burst sends with request: (one of go, other)" in found[1].message
