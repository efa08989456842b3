"""`heisen verify`: exit 0 valid, 1 violation, 2 bad input naming the line."""

import json
import subprocess
import sys


def ops(*rows):
    return "\n".join(
        json.dumps(dict(zip(("process", "type", "f", "key", "value", "time"), row, strict=True)))
        for row in rows
    )


VALID = ops(
    (0, "invoke", "write", "x", 1, 10),
    (0, "ok", "write", "x", 1, 20),
    (1, "invoke", "read", "x", None, 30),
    (1, "ok", "read", "x", 1, 40),
)
STALE = ops(
    (0, "invoke", "write", "x", 1, 10),
    (0, "ok", "write", "x", 1, 20),
    (0, "invoke", "write", "x", 2, 30),
    (0, "ok", "write", "x", 2, 40),
    (1, "invoke", "read", "x", None, 50),
    (1, "ok", "read", "x", 1, 60),
)


def verify(tmp_path, text, *args):
    path = tmp_path / "history.jsonl"
    path.write_text(text + "\n")
    return subprocess.run(
        [sys.executable, "-m", "heisen", "verify", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )


def test_valid_history_exits_0(tmp_path):
    result = verify(tmp_path, VALID, "--model", "register")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_stale_read_exits_1_with_its_minimal_history_as_json(tmp_path):
    result = verify(tmp_path, STALE, "--model", "register", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    violation = report["violations"][0]
    assert violation["key"] == "x"
    values = [op["value"] for op in violation["operations"] if op["type"] == "ok"]
    assert 1 in values and 2 in values


def test_malformed_line_exits_2_and_names_it(tmp_path):
    result = verify(tmp_path, VALID + '\n{"process": 1, "type": "nope"', "--model", "register")
    assert result.returncode == 2
    assert ":5:" in result.stderr


def test_unknown_model_exits_2(tmp_path):
    result = verify(tmp_path, VALID, "--model", "queue")
    assert result.returncode == 2
    assert "register" in result.stderr
