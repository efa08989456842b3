"""Mapping files that do not validate fail before the port is bound, naming file and JSON path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_stub_support import TREE

from heisen.errors import PipelineError
from heisen.system.stub import StubServer, load_mappings


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "mappings").mkdir()
    for name, text in files.items():
        (tmp_path / "mappings" / name).write_text(text)
    return tmp_path


def test_the_whole_tree_loads() -> None:
    mappings = load_mappings(TREE)
    names = {m.name for m in mappings}
    assert {"hello", "slow", "pay", "single mapping file"} <= names
    assert len(mappings) == 17 + 5 + 4 + 3 + 1


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    bad = {
        "mappings": [
            {"request": {"method": "GET", "urlPattern": "/x/(["}, "response": {"status": 200}},
            {
                "request": {"url": "/y", "headerz": {}},
                "response": {"fault": "BOOM", "delayDistribution": {"type": "pareto"}},
            },
        ]
    }
    root = _tree(tmp_path, {"pay.json": json.dumps(bad)})
    with pytest.raises(PipelineError) as caught:
        load_mappings(root)
    text = str(caught.value)
    assert "pay.json" in text
    assert "mappings[0].request.urlPattern: invalid regular expression" in text
    assert (
        "mappings[1].request.headerz: unknown request key 'headerz'; did you mean 'headers'?"
        in text
    )
    assert "mappings[1].response.fault: unknown fault 'BOOM'" in text
    assert "mappings[1].response.delayDistribution.type" in text


def test_yaml_problems_carry_the_line(tmp_path: Path) -> None:
    root = _tree(
        tmp_path, {"a.yaml": "request:\n  method: GET\n  url: /a\nresponse:\n  status: many\n"}
    )
    with pytest.raises(PipelineError) as caught:
        load_mappings(root)
    assert "response.status (line 5" in str(caught.value)


def test_problems_across_files_are_all_listed(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a.json": "{not json", "b.json": json.dumps({"response": {}})})
    with pytest.raises(PipelineError) as caught:
        StubServer(root)
    text = str(caught.value)
    assert "(2 files)" in text and "a.json" in text and "b.json: " in text
    assert "invalid JSON" in text and "needs a request" in text


def test_missing_body_file_is_named(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "f.json": json.dumps(
                {"request": {"url": "/f"}, "response": {"bodyFileName": "nope.txt"}}
            )
        },
    )
    with pytest.raises(PipelineError, match=r"response\.bodyFileName: no such file .*nope\.txt"):
        load_mappings(root)
