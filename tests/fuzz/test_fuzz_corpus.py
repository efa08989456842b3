from __future__ import annotations

import math
from pathlib import Path

import pytest

from heisen.errors import PipelineError
from heisen.fuzz._cases import make_case
from heisen.fuzz._corpus import Corpus, load_previous
from heisen.fuzz._values import EdgeKind


def test_failing_cases_round_trip_and_come_back_shrunk_first(tmp_path: Path) -> None:
    run_one, run_two = tmp_path / "run-1", tmp_path / "run-2"
    weird = make_case(
        {"user": "a\ud800\u202e", "qty": math.nan, "deep": [[[]]]},
        "qty: NaN",
        EdgeKind.FLOAT,
        {"event_id": "e1"},
        {"page": 2},
    )
    big = make_case(
        {"user": "bob", "qty": 2**63}, "qty: int64 max + 1", EdgeKind.BOUNDARY, {"event_id": "e1"}
    )
    small = make_case({"qty": 2**31}, "shrunk", EdgeKind.BOUNDARY, {"event_id": "e1"})
    written = Corpus(run_one).add(
        weird, outcome="5xx", operation="POST /events/{event_id}/checkout"
    )
    assert written == run_one / "fuzz-corpus" / f"{weird.id}.json"
    assert "NaN" in written.read_text() and "\\ud800" in written.read_text()
    Corpus(run_two).add(
        big, outcome="5xx", operation="POST /events/{event_id}/checkout", shrunk=small
    )
    Corpus(run_two).add(
        big, outcome="5xx", operation="POST /events/{event_id}/checkout", shrunk=small
    )

    cases = load_previous([run_two, run_one / "fuzz-corpus", tmp_path / "missing"])
    assert [c.id for c in cases] == [small.id, big.id, weird.id]
    back = cases[2]
    assert back.payload["user"] == "a\ud800\u202e" and math.isnan(back.payload["qty"])
    assert back.path_params == {"event_id": "e1"} and back.query == {"page": 2}
    assert back.kind is EdgeKind.FLOAT and back.label == "corpus: qty: NaN"
    assert back.body == weird.body
    assert cases[0].label.endswith("(shrunk)") and cases[0].payload == {"qty": 2**31}
    assert load_previous([run_one], operation="GET /health") == []
    entry = Corpus(run_two).entries()[0]
    assert entry.outcome == "5xx" and entry.shrunk is not None


def test_a_damaged_entry_is_reported_by_file(tmp_path: Path) -> None:
    directory = tmp_path / "fuzz-corpus"
    directory.mkdir()
    (directory / "abc.json").write_text('{"version": 1, "payload": {}}')
    with pytest.raises(PipelineError, match=r"abc\.json") as caught:
        load_previous([tmp_path])
    assert caught.value.problems[0].path == "outcome"
