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
