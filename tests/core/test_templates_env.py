"""Templates beyond names: `env.NAME` (with `default`), integer arithmetic, seeded `choice`.

Pipelines go through `heisen validate` / `heisen run` in a subprocess (exit code and the
located message), requests through the real `RequestFactory` that load uses.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from heisen import _templates
from heisen.schema import RequestTemplate
from heisen.stress._render import RequestFactory
from support import heisen

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: modes
dependencies:
  postgres: {kind: postgres, embedded: true}
services:
  app:
    command: ["{{ python }}", "app.py", "--mode", COMMAND_MODE]
    env:
      DATABASE_URL: "{{ deps.postgres.dsn }}"
      MODE: ENV_MODE
scenario:
  requests:
    buy:
      method: POST
      path: /buy
      json: {seat: BODY}
  load:
    - burst: {requests: 10}
invariants:
  - name: fine
    sql: SELECT 1 AS one
    expect: one == 1
"""


def pipeline(
    tmp_path: Path,
    *,
    command_mode: str = '"buggy"',
    env_mode: str = '"{{ env.MODE | default(\\"buggy\\") }}"',
    body: str = '"{{ i % 5 }}"',
) -> Path:
    (tmp_path / "app.py").write_text("")
    text = (
        PIPELINE.replace("COMMAND_MODE", command_mode)
        .replace("ENV_MODE", env_mode)
        .replace("BODY", body)
    )
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_one_pipeline_serves_both_modes_and_a_missing_variable_is_located(tmp_path: Path) -> None:
    path = pipeline(tmp_path, command_mode='"{{ env.MODE }}"')
    for mode in ("buggy", "fixed"):
        result = heisen("validate", str(path), env={"MODE": mode})
        assert result.returncode == 0, result.stdout + result.stderr
    for command in ("validate", "run"):
        result = heisen(command, str(path), columns=1000)
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        line = line_of(path, "--mode")
        assert re.search(
            rf"services\.app\.command\[3\] \(line {line}:\d+\): \{{\{{ env\.MODE \}}\}}: "
            r"the environment variable MODE is not set",
            output,
        ), output
        assert 'default("...")' in output
        assert "Traceback" not in output


def test_a_default_renders_when_the_variable_is_unset_and_yields_to_it_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve = _templates.mapping_resolver({})
    text = '--mode={{ env.HEISEN_TEST_MODE | default("buggy") }}'
    monkeypatch.delenv("HEISEN_TEST_MODE", raising=False)
    assert _templates.render_text(text, resolve) == "--mode=buggy"
    monkeypatch.setenv("HEISEN_TEST_MODE", "fixed")
    assert _templates.render_text(text, resolve) == "--mode=fixed"
    monkeypatch.delenv("HEISEN_TEST_MODE")
    with pytest.raises(_templates.TemplateError, match="HEISEN_TEST_MODE is not set"):
        _templates.render_text("{{ env.HEISEN_TEST_MODE }}", resolve)


def factory(json_body: object, seed: int = 7) -> RequestFactory:
    template = RequestTemplate.model_validate({"method": "POST", "path": "/x", "json": json_body})
    return RequestFactory({"x": template}, trial=1, seed=seed, run_id="r")


def test_arithmetic_on_i_renders_integers() -> None:
    make = factory(
        {
            "mod": "{{ i % 5 }}",
            "next": "{{ i + 1 }}",
            "double": "{{ i * 2 }}",
            "third": "{{ i // 3 }}",
            "nested": "{{ (i + 1) * -2 }}",
            "text": "seat-{{ i % 3 }}",
        }
    )
    for i in range(12):
        make.render("x", i)
        assert make.sent[i].json_body == {
            "mod": i % 5,
            "next": i + 1,
            "double": i * 2,
            "third": i // 3,
            "nested": (i + 1) * -2,
            "text": f"seat-{i % 3}",
        }


def test_choice_is_drawn_from_the_seed_and_the_index_so_a_replay_sends_the_same() -> None:
    body = {"tier": '{{ choice(["gold", "silver", "bronze"]) }}'}
    first = factory(body, seed=7)
    replay = factory(body, seed=7)
    other = factory(body, seed=8)
    drawn = []
    for i in range(60):
        first.render("x", i)
        replay.render("x", i)
        other.render("x", i)
        drawn.append(first.sent[i].json_body["tier"])
        assert replay.sent[i].json_body == first.sent[i].json_body
    assert set(drawn) == {"gold", "silver", "bronze"}
    assert [other.sent[i].json_body["tier"] for i in range(60)] != drawn


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('"{{ i.__class__ }}"', "names starting with '_' are not allowed"),
        ('"{{ __import__(\\"os\\") }}"', "names starting with '_' are not allowed"),
        ('"{{ i ** 99 }}"', "unexpected '**'"),
        ('"{{ i / 2 }}"', "'//' divides integers"),
        ('"{{ i // 0 }}"', "divides by zero"),
        ('"{{ choice([]) }}"', "needs at least one option"),
        ('"{{ nope + 1 }}"', "the template has no 'nope' (known: faker"),
        ('"{{ i-1 }}"', "subtract with spaces: i - 1"),
        ('"{{ seat | default(\\"x\\") }}"', "default(...) follows an environment variable"),
    ],
)
def test_what_the_grammar_refuses_is_located_at_validate(
    tmp_path: Path, body: str, said: str
) -> None:
    path = pipeline(tmp_path, body=body)
    result = heisen("validate", str(path), columns=1000)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    line = line_of(path, "json: {seat:")
    assert f"scenario.requests.buy.json.seat (line {line}:" in output, output
    assert said in output, output


def test_unknown_names_list_env_and_choice_and_choice_stays_in_requests(tmp_path: Path) -> None:
    path = pipeline(tmp_path, env_mode='"{{ choice([\\"a\\", \\"b\\"]) }}"', body='"{{ envv }}"')
    result = heisen("validate", str(path), columns=1000)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"services.app.env.MODE (line {line_of(path, 'MODE:')}:" in output
    assert "so it works in scenario requests only" in output
    assert "the template has no 'envv'" in output
    assert "(known: faker, i, run_id, seed, trial, env, choice([...]))" in output
