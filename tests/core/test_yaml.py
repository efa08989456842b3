import time

import pytest

from heisen._yaml import load_yaml_file, load_yaml_text
from heisen.errors import PipelineError

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def test_positions_of_nested_values():
    document = load_yaml_text("a:\n  b: 1\n  c: [1, {d: x}]\n", source="t.yaml")
    assert document.data == {"a": {"b": 1, "c": [1, {"d": "x"}]}}
    assert document.locate(("a", "c", 1, "d")) == (3, 14)
    assert document.locate(("a", "missing")) == document.locate(("a",))


def test_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(PipelineError, match="alias bomb"):
        load_yaml_file(path)
    assert time.monotonic() - started < 2.0


def test_large_file_is_refused_without_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * (50 * 1024 * 1024))
    started = time.monotonic()
    with pytest.raises(PipelineError, match="capped"):
        load_yaml_file(path)
    assert time.monotonic() - started < 2.0


def test_directory_binary_and_missing(tmp_path):
    with pytest.raises(PipelineError, match="is a directory"):
        load_yaml_file(tmp_path)
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\x7fELF\x00\x01\x02")
    with pytest.raises(PipelineError, match="binary"):
        load_yaml_file(binary)
    with pytest.raises(PipelineError, match="no such file"):
        load_yaml_file(tmp_path / "absent.yaml")


def test_syntax_error_has_line_and_column():
    with pytest.raises(PipelineError) as info:
        load_yaml_text("a: 1\nb: [1, 2\n", source="t.yaml")
    problem = info.value.problems[0]
    assert problem.line is not None and problem.line >= 2


def test_python_objects_are_not_constructed():
    with pytest.raises(PipelineError):
        load_yaml_text("a: !!python/object/apply:os.system ['true']\n", source="t.yaml")


def test_a_file_larger_than_its_stat_says_is_read_only_up_to_the_cap():
    # /proc files report size 0: the cap holds on what is read, not on what stat says
    from pathlib import Path

    from heisen._yaml import read_capped

    with pytest.raises(PipelineError, match="more than"):
        read_capped(Path("/proc/self/maps"), max_bytes=64)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(PipelineError, match="FIFO"):
        load_yaml_file(fifo)
    assert time.monotonic() - started < 1.0


def test_duplicate_keys_name_both_lines():
    with pytest.raises(PipelineError) as info:
        load_yaml_text("a: 1\nb:\n  c: 2\n  c: 3\n", source="t.yaml")
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == ("b.c", 4)
    assert "line 3 and again on line 4" in problem.message


def test_merge_keys_own_keys_win_then_earlier_merges():
    document = load_yaml_text(
        "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  x: 3\n", source="t.yaml"
    )
    assert document.data["c"] == {"x": 3, "y": 1, "z": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a: !!int "abc"\n', "!!int cannot be made of 'abc'"),
        ("a: !!binary aGVsbG8=\n", "!!binary is not allowed"),
        ("a: !!timestamp 2024-01-01\n", "!!timestamp is not allowed"),
        ("a: 1\n<<: 5\n", "merge key"),
        ('a: "x\\0y"\n', "NUL"),
        ("a: &a [1, *a]\n", "recursive alias"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "deeper than 64"),
    ],
)
def test_hostile_yaml_is_a_located_problem(text, message):
    with pytest.raises(PipelineError) as info:
        load_yaml_text(text, source="t.yaml")
    (problem,) = info.value.problems
    assert message in problem.message
    assert problem.line == (2 if "<<" in text else 1)


def test_a_plain_date_is_text_and_an_explicit_str_tag_is_honoured():
    document = load_yaml_text("when: 2024-01-01\nname: !!str 5\n", source="t.yaml")
    assert document.data == {"when": "2024-01-01", "name": "5"}
