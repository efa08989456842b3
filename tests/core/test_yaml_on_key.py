"""A bare `on:` key (YAML 1.1 reads it as the boolean true) means the word, like `"on":`."""

from __future__ import annotations

from pathlib import Path

import pytest

from heisen._yaml import load_yaml_text
from heisen.errors import PipelineError
from heisen.pipeline import load_pipeline
from support import heisen

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: two-databases
dependencies:
  orders: {kind: postgres, embedded: true}
  audit: {kind: postgres, embedded: true}
services:
  app: {command: ["{{ python }}", "app.py"]}
scenario:
  setup:
    - sql: TRUNCATE orders
      ON: SETUP_TARGET
  requests:
    buy: {method: POST, path: /buy}
  load:
    - burst: {requests: 10}
invariants:
  - name: audited
    sql: SELECT count(*) AS n FROM audit_log
    ON: audit
    expect: n >= 0
"""


def write(tmp_path: Path, key: str, target: str = "orders") -> Path:
    (tmp_path / "app.py").write_text("")
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.replace("ON", key).replace("SETUP_TARGET", target))
    return path


@pytest.mark.parametrize("key", ["on", '"on"', "'on'", "On"])
def test_bare_and_quoted_on_name_the_dependency(tmp_path: Path, key: str) -> None:
    loaded = load_pipeline(write(tmp_path, key))
    assert loaded.pipeline.scenario.setup[0].on == "orders"
    assert loaded.pipeline.invariants[0].on == "audit"


@pytest.mark.parametrize("key", ["on", '"on"'])
def test_a_wrong_target_is_located_either_way(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, key, target="ordres")
    result = heisen("validate", str(path), columns=1000)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "ordres" in text)
    assert f"scenario.setup[0].on (line {line}:" in output, output
    assert "no postgres dependency named 'ordres' (known: audit, orders)" in output
    assert "Keys should be strings" not in output


def test_on_twice_once_bare_once_quoted_is_a_duplicate() -> None:
    with pytest.raises(PipelineError, match="duplicate key 'on': written on line 2 and again"):
        load_yaml_text('step:\n  on: a\n  "on": b\n', source="t.yaml")


def test_only_a_bare_on_key_is_mended() -> None:
    """An explicit `!!bool on` key, other YAML 1.1 booleans and `on` as a value stay booleans."""
    data = load_yaml_text("a: {!!bool on: 1}\nb: {yes: 3}\nc: on\nd: {on: 4}\n", source="t").data
    assert data == {"a": {True: 1}, "b": {True: 3}, "c": True, "d": {"on": 4}}
