"""Malformed and hostile inputs: exit 2 (or 3 for the environment) naming path and line, never a traceback.

`corpus/NNN-*.yaml` are small mutations of known-good pipelines (written by
`corpus/generate.py`), each headed by what `heisen validate` must say:

    # expect: exit 2, path: phases.stress.thresholds[0], line: 40

The rest: special files, `verify` on hostile JSON, out-of-range ports and
URLs, unusable run directories, and a Hypothesis search over mutated pipelines.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from heisen.cli import main

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
ROOT = HERE.parents[1]
CASES = sorted(CORPUS.glob("[0-9][0-9][0-9]-*.yaml"))
HEADER = re.compile(r"^# expect: exit (\d+)(?:, path: (.+), line: (\d+|-))?$")


def heisen(*args: str) -> tuple[int, str]:
    """Run the command line in-process as the console script does: (exit code, stdout + stderr).

    Anything but SystemExit propagates, so a traceback fails the test that caused it.
    """
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["heisen", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code: Any = 0
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.argv = argv
    return (code if isinstance(code, int) else 1), out.getvalue() + err.getvalue()


def validate(path: Path) -> tuple[int, str]:
    """`heisen validate PATH` without building the whole command line (typer takes 0.3 s for that).

    Errors are mapped as `main()` maps them; anything else propagates as a traceback would.
    """
    from heisen.cli import _app
    from heisen.cli.validate import validate_command
    from heisen.errors import HeisenError

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            validate_command(path, as_json=False)
            code = 0
        except typer.Exit as exc:
            code = exc.exit_code
        except HeisenError as exc:
            _app.error_console().print(f"[bold red]error:[/] {_app.escape(str(exc))}")
            code = exc.exit_code
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(autouse=True)
def _wide_plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100000")  # one problem per line: path and line stay together
    monkeypatch.setenv("NO_COLOR", "1")


def expectation(path: Path) -> tuple[int, str | None, int | None, str]:
    lines = path.read_text(errors="replace").splitlines()
    match = HEADER.match(lines[0])
    assert match, f"{path.name}: the first line must be '# expect: exit N, path: P, line: L'"
    pending = lines[1].removeprefix("# pending: ") if lines[1].startswith("# pending:") else ""
    line = match.group(3)
    return (
        int(match.group(1)),
        match.group(2),
        (int(line) if line and line != "-" else None),
        pending,
    )


def test_the_corpus_is_large_and_every_file_says_what_to_expect() -> None:
    assert len(CASES) >= 150
    refused = [case for case in CASES if expectation(case)[0] != 0]
    assert len(refused) >= 150
    for case in CASES:
        expectation(case)


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_validate_refuses_with_path_and_line(case: Path) -> None:
    exit_code, path, line, pending = expectation(case)
    started = time.monotonic()
    code, output = validate(case)
    elapsed = time.monotonic() - started
    assert "Traceback" not in output
    assert elapsed < 2.0, f"{case.name} took {elapsed:.2f}s"
    name = re.escape(path or "")
    where = rf" \(line {line}:\d+\): " if line is not None else r": "
    said = exit_code == 0 or re.search(rf"(^|\s){name}{where}", output, re.MULTILINE)
    if pending and (code != exit_code or not said):
        pytest.skip(f"pending: {pending}")  # another change makes validate refuse this
    assert code == exit_code, output
    assert said, output
    if exit_code == 0:
        assert "valid" in output


def test_the_corpus_is_what_its_generator_writes(tmp_path: Path) -> None:
    """The files in git are the generator's output: a hand edit would be lost on the next run."""
    sys.path.insert(0, str(CORPUS))
    try:
        import generate
    finally:
        sys.path.remove(str(CORPUS))
    assert len(generate.CASES) == len(CASES)
    for number, case in enumerate(generate.CASES, start=1):
        text, _ = generate.render(case)
        written = (CORPUS / f"{number:03d}-{case.slug}.yaml").read_text()
        assert written.split("\n", 2)[2] == text, case.slug


# --- special files: refused at once, never read whole, never waited on


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def _socket(tmp_path: Path) -> Path:
    path = tmp_path / "sock.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path


def _oversize(tmp_path: Path) -> Path:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"name: " + b"x" * (5 * 1024 * 1024))
    return path


def _link_to_zero(tmp_path: Path) -> Path:
    path = tmp_path / "zero.yaml"
    path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: Path("/dev/zero"), "character device"),
        (lambda tmp: Path("/dev/null"), "character device"),
        (_link_to_zero, "character device"),
        (_fifo, "FIFO"),
        (_socket, "not a regular file"),
        (lambda tmp: tmp, "directory"),
        (_oversize, "capped at 5 MB"),
        (lambda tmp: tmp / "absent.yaml", "no such file"),
    ],
    ids=[
        "dev-zero",
        "dev-null",
        "symlink-to-dev-zero",
        "fifo",
        "socket",
        "directory",
        "oversize",
        "missing",
    ],
)
def test_special_files_are_refused_at_once(tmp_path: Path, make: Any, message: str) -> None:
    target = make(tmp_path)
    started = time.monotonic()
    code, output = heisen("validate", str(target))
    assert code == 2, output
    assert message in output
    assert time.monotonic() - started < 2.0


# --- verify: hostile JSON lines are exit 2 with the line, never exit 1


def _operation(value: str, process: int = 1, kind: str = "invoke", f: str = "write") -> str:
    return f'{{"process": {process}, "type": "{kind}", "f": "{f}", "value": {value}, "time": 1}}'


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([_operation("1"), "[" * 100_000 + "]" * 100_000], ":2: the JSON nests deeper than 64"),
        ([_operation("[" * 900 + "]" * 900)], ":1: the JSON nests deeper than 64"),
        ([_operation("9" * 10_000)], ":1: not valid JSON"),
        ([_operation("1"), "{"], ":2: not valid JSON"),
    ],
    ids=["deep-array-line", "deep-value", "huge-integer", "truncated"],
)
@pytest.mark.parametrize("model", ["register", "cas-register"])
def test_verify_refuses_hostile_json_with_its_line(
    tmp_path: Path, lines: list[str], message: str, model: str
) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(lines) + "\n")
    code, output = heisen("verify", str(history), "--model", model)
    assert code == 2, output
    assert message in output


# --- ports, URLs and run directories


@pytest.mark.parametrize(
    "args",
    [
        ["isolate", "serve", "--port", "99999"],
        ["isolate", "serve", "--port", "-1"],
        [
            "fuzz",
            "--openapi",
            str(ROOT / "tests/fuzz/orders_openapi.yaml"),
            "--url",
            "http://127.0.0.1:99999",
        ],
        [
            "fuzz",
            "--openapi",
            str(ROOT / "tests/fuzz/orders_openapi.yaml"),
            "--url",
            "ftp://127.0.0.1",
        ],
        ["stress", "--url", "http://127.0.0.1:99999/x", "--burst", "2"],
        ["stress", "--url", "http://127.0.0.1:0/x", "--burst", "2"],
    ],
    ids=[
        "serve-port-99999",
        "serve-port-negative",
        "fuzz-port-99999",
        "fuzz-ftp",
        "stress-port-99999",
        "stress-port-0",
    ],
)
def test_ports_and_urls_out_of_range_are_usage_errors(args: list[str]) -> None:
    code, output = heisen(*args)
    assert code == 2, output
    assert "Traceback" not in output
    assert "port" in output.lower() or "url" in output.lower()


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain").write_text("x")
    return tmp_path / "plain" / "run"


@pytest.mark.parametrize(
    "make",
    [_under_a_file, lambda tmp: Path("/proc/heisen-run"), lambda tmp: Path("/dev/null/run")],
    ids=["under-a-regular-file", "in-proc", "under-dev-null"],
)
def test_an_unusable_run_dir_is_an_environment_error_naming_it(tmp_path: Path, make: Any) -> None:
    run_dir = make(tmp_path)
    pipeline = ROOT / "tests/core/counter/pipeline.yaml"
    code, output = heisen("stress", str(pipeline), "--run-dir", str(run_dir), "--ci")
    assert code == 3, output
    assert str(run_dir) in output
    assert not (tmp_path / "plain").is_dir()


# --- the ranges are documented where the fields are


def test_every_range_is_in_the_docs() -> None:
    from heisen.schema import limits as _limits

    docs = (ROOT / "docs/pipeline-limits.md").read_text()
    for bounds in _limits.ALL:
        assert bounds.text() in docs, f"{bounds.name}: {bounds.text()} is not in the docs"
    assert f"{_limits.SWEEP_TOTAL_TRIALS:,}" in docs
    assert f"{_limits.MIX_MIN_SHARE:.0%}" in docs


# --- a search over mutated example pipelines: exit 0 or 2, never a traceback, always quick


def _absolute(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """The example with its file references made absolute, so that it validates from anywhere."""
    for dep in data.get("dependencies", {}).values():
        for key in ("init", "stub"):
            if key in dep:
                dep[key] = str(base / dep[key])
    phases = data.get("phases", {})
    for section, key in (
        ("predict", "architecture"),
        ("predict", "incidents"),
        ("fuzz", "openapi"),
    ):
        if key in phases.get(section, {}):
            phases[section][key] = str(base / phases[section][key])
    return data


EXAMPLES = [
    _absolute(
        yaml.safe_load((ROOT / "tests/core/counter/pipeline.yaml").read_text()),
        ROOT / "tests/core/counter",
    ),
    _absolute(
        yaml.safe_load((ROOT / "examples/ticketing/pipeline.yaml").read_text()),
        ROOT / "examples/ticketing",
    ),
]
WEIRD = st.sampled_from(
    [None, True, False, 0, -1, -3, 1, 10**30, 0.0, -0.0, math.inf, -math.inf, math.nan, 1e-9,
     "", " ", "0s", "-1s", ".inf", "1e400", "99999999999999999h", "1m", "{{ faker.__class__ }}",
     "{{ i.__class__ }}", "{{ faker.user_nme }}", "p99 < banana", "\x00", "a\x00b", "\u202e",
     "é" * 50, "x" * 5000, [], {}, [None], {"a": None}, {"<<": 5}]
)  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _set(data: Any, path: tuple[Any, ...], new: Any, *, delete: bool = False) -> None:
    for part in path[:-1]:
        data = data[part]
    if delete:
        del data[path[-1]]
    else:
        data[path[-1]] = new


@st.composite
def mutated_pipelines(draw: st.DrawFn) -> str:
    data = json.loads(json.dumps(draw(st.sampled_from(EXAMPLES))))  # a deep copy
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["delete", "weird", "swap", "nest"]))
        if how == "delete":
            _set(data, path, None, delete=True)
        elif how == "weird":
            _set(data, path, copy.deepcopy(draw(WEIRD)))
        elif how == "swap":
            _set(data, path, copy.deepcopy(draw(st.sampled_from([[1, 2], {"x": 1}, "text", 3.5]))))
        else:
            nested: Any = 1
            for _ in range(draw(st.integers(1, 200))):
                nested = [nested]
            _set(data, path, nested)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    if draw(st.booleans()):  # a duplicate key: one line written twice
        lines = text.splitlines()
        keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w-]+: \S", line)]
        if keyed:
            at = draw(st.sampled_from(keyed))
            lines.insert(at + 1, lines[at])
            text = "\n".join(lines) + "\n"
    return text


@pytest.fixture(scope="module")
def _warm() -> None:
    """Validate each example once, so that first imports are not timed as the validator's."""
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for number, example in enumerate(EXAMPLES):
            path = directory / f"example-{number}.yaml"
            path.write_text(yaml.safe_dump(example, sort_keys=False))
            assert validate(path)[0] == 0


@pytest.mark.slow
@settings(
    max_examples=200,
    deadline=None,  # timed below, after the warm-up, with room for a loaded machine
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=mutated_pipelines())
def test_mutated_examples_are_valid_or_refused_never_a_crash(
    _warm: None, tmp_path: Path, text: str
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    started = time.monotonic()
    code, output = validate(path)
    event(f"exit {code}")
    assert code in (0, 2), output
    assert "Traceback" not in output
    assert time.monotonic() - started < 5.0
