"""validate refuses names an `expect:` can never be given, with the YAML line, before anything runs."""

import shutil
from pathlib import Path

import pytest
from test_corpus import heisen

from support import COUNTER


def validate(tmp_path: Path, invariant: str) -> tuple[int, str]:
    target = tmp_path / "counter"
    shutil.copytree(COUNTER, target)
    text = (COUNTER / "pipeline.yaml").read_text()
    text = text.replace("invariants:\n", f"invariants:\n  - {invariant}\n")
    (target / "pipeline.yaml").write_text(text)
    code, output = heisen("validate", str(target / "pipeline.yaml"))
    return code, " ".join(output.split())


@pytest.mark.parametrize(
    ("invariant", "said"),
    [
        (
            "{name: h, http: {method: GET, path: /n}, expect: bodi.n >= 0}",
            "invariants[0].expect (line 29:",
        ),
        (
            "{name: h, http: {method: GET, path: /n}, expect: bodi.n >= 0}",
            "'bodi' is not a variable of a http: probe (it gives body, headers, load, status); did you mean 'body'?",
        ),
        (
            "{name: h, http: {method: GET, path: /n}, expect: body.n == load.inc.ok}",
            "load.inc: the scenario has no request named 'inc' (load. names one of incr, total); did you mean 'incr'?",
        ),
        (
            '{name: s, sql: "SELECT n, (SELECT count(*) FROM incr_log) AS logged FROM counter", expect: valu == logged}',
            "'valu' is not a variable of a sql: probe (it gives load, logged, n, rowcount, rows)",
        ),
        (
            '{name: s, sql: "SELECT \\"Sold\\", capacity AS Cap FROM t", expect: Sold <= Cap}',
            "'Cap' is not a variable of a sql: probe (it gives Sold, cap, load, rowcount, rows); did you mean 'cap'?",
        ),
    ],
)
def test_a_name_no_probe_gives_is_refused_with_its_line(tmp_path, invariant, said):
    code, output = validate(tmp_path, invariant)
    assert code == 2
    assert said in output


@pytest.mark.parametrize(
    "expect",
    [
        "body.n == load.incr.ok",
        "status == 200 and load.total.info == 0",
        'load.incr.ok <= body.n <= load.incr.ok + load.incr.info and load.incr.status["200"] >= 0',
    ],
)
def test_the_probe_and_load_names_validate(tmp_path, expect):
    code, output = validate(
        tmp_path, f"{{name: h, http: {{method: GET, path: /n}}, expect: '{expect}'}}"
    )
    assert code == 0, output


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM counter",
        "SELECT count(*) FROM incr_log",
        "SELECT 1 UNION SELECT 2",
        "SELEKT n",
    ],
)
def test_sql_whose_columns_cannot_be_known_is_left_to_the_run(tmp_path, sql):
    code, output = validate(tmp_path, f'{{name: s, sql: "{sql}", expect: anything == 1}}')
    assert code == 0, output
