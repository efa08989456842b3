from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from heisen.oracle import (
    HistoryError,
    HistoryWriter,
    Operation,
    OpType,
    pair_calls,
    read_history,
)


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = [
    '{"process": 1, "type": "invoke", "f": "write", "key": "a", "value": 5, "time": 10}',
    '{"process": 2, "type": "invoke", "f": "read", "key": "a", "value": null, "time": 12}',
    '{"process": 1, "type": "ok", "f": "write", "key": "a", "value": 5, "time": 19}',
    "",
    '{"process": 2, "type": "info", "f": "read", "key": "a", "value": null, "time": 25}',
    '{"process": 3, "type": "invoke", "f": "write", "value": 6, "time": 30}',
]


def test_read_and_pair(tmp_path: Path) -> None:
    history = read_history(write_lines(tmp_path / "h.jsonl", *GOOD))
    assert [op.index for op in history] == [0, 1, 2, 4, 5]
    assert history[0].key == "a" and history[0].type is OpType.INVOKE
    calls = pair_calls(history)
    assert [(c.process, c.type.value, c.returned) for c in calls] == [
        (1, "ok", 19),
        (2, "info", None),
        (3, "info", None),  # never completed: unknown
    ]
    assert calls[0].input == 5 and calls[0].output == 5
    assert calls[2].key is None and calls[2].completion is None


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ('{"process": 1, "type": "ok"', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"process": 1, "type": "invoke", "f": "read"}', "missing field time"),
        ('{"process": 1, "type": "done", "f": "read", "time": 1}', "unknown type 'done'"),
        ('{"process": 1, "type": "invoke", "f": "read", "time": -1}', "'time' must be"),
        ('{"process": [1], "type": "invoke", "f": "read", "time": 1}', "'process' must be"),
        ('{"process": 1, "type": "invoke", "f": "read", "key": {}, "time": 1}', "'key' must be"),
        ('{"process": 9, "type": "ok", "f": "write", "time": 40}', "without an invoke"),
        ('{"process": 3, "type": "invoke", "f": "read", "time": 40}', "has not completed"),
        ('{"process": 3, "type": "ok", "f": "read", "time": 40}', "does not match its invoke"),
    ],
)
def test_malformed_lines_name_their_line_number(tmp_path: Path, bad: str, fragment: str) -> None:
    path = write_lines(tmp_path / "h.jsonl", *GOOD, bad)
    with pytest.raises(HistoryError) as caught:
        read_history(path)
    assert caught.value.line == 7
    assert "h.jsonl:7: " in str(caught.value)
    assert fragment in str(caught.value)


def test_extra_fields_are_ignored_and_from_dict_round_trips(tmp_path: Path) -> None:
    line = '{"process": 1, "type": "invoke", "f": "read", "time": 1, "trial": 3}'
    (op,) = read_history(write_lines(tmp_path / "h.jsonl", line))
    assert op.to_dict() == {"process": 1, "type": "invoke", "f": "read", "value": None, "time": 1}
    again = Operation.from_dict({**op.to_dict(), "index": 7})
    assert again.index == 7 and again.type is OpType.INVOKE
    with pytest.raises(HistoryError, match="unknown type"):
        Operation.from_dict({"process": 1, "type": "begin", "f": "read", "time": 1})


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read the file"):
        read_history(tmp_path / "absent.jsonl")


def test_writer_is_thread_safe_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    with HistoryWriter(path) as writer:

        def client(process: int) -> None:
            for value in range(50):
                writer.invoke(process, "write", value, key=f"k{process}")
                writer.write(process, "ok", "write", value, key=f"k{process}")

        threads = [threading.Thread(target=client, args=(p,)) for p in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert len(path.read_text().splitlines()) == 400  # flushed as written
    history = read_history(path)
    assert len(pair_calls(history)) == 200
    times = [op.time for op in history]
    assert times == sorted(times)
    assert json.loads(path.read_text().splitlines()[0])["type"] == "invoke"
