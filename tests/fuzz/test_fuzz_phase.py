"""The fuzz phase through `heisen fuzz PIPELINE`: a buggy stock service, embedded PostgreSQL, real replays."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml
from fuzz_servers import serve
from stock_service import make_app

import support
from heisen.outputs import FuzzOutputs

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: fuzz-stock
seed: 11
dependencies:
  postgres: {{kind: postgres, dsn: "{dsn}"}}
services:
  stock:
{service}
scenario:
  setup:
    - sql: "UPDATE stock SET left_qty = 100; DELETE FROM takes"
  requests:
    take: {{method: POST, path: /items/apple/take, json: {{qty: 1}}}}
  load:
    - burst: {{requests: 2}}
  timeout: 3s
invariants:
  - name: stock-within-capacity
    sql: "SELECT left_qty FROM stock WHERE item = 'apple'"
    expect: left_qty <= 100
phases:
  fuzz:
{fuzz}
"""


heisen = partial(support.heisen, timeout=120)


def fuzz_outputs(run_dir: Path) -> dict:
    manifest = yaml.safe_load((run_dir / "manifest.yaml").read_text())
    return manifest["phases"]["fuzz"]


@pytest.fixture
def dsn(embedded_postgres) -> str:
    return embedded_postgres.create_database(f"fuzz_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def switch() -> dict[str, bool]:
    """Flip `switch["fixed"]` to fix the service the `buggy_url` fixture serves, in place."""
    return {"fixed": False}


@pytest.fixture
def buggy_url(dsn, switch) -> Iterator[str]:
    with serve(lambda: make_app(dsn, switch=switch)) as url:
        yield url


def shell(command: str) -> subprocess.CompletedProcess[str]:
    """A command a finding prints, run as a user runs it: `heisen` found on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{support.inherited_path()}"
    return subprocess.run(
        shlex.split(command),
        capture_output=True,
        text=True,
        timeout=60,
        env={"NO_COLOR": "1", "PATH": path},
    )


def write_pipeline(folder: Path, dsn: str, service: str, fuzz: str) -> Path:
    shutil.copy(HERE / "stock_openapi.yaml", folder / "openapi.yaml")
    shutil.copy(HERE / "stock_service.py", folder / "stock_service.py")
    path = folder / "pipeline.yaml"
    path.write_text(PIPELINE.format(dsn=dsn, service=service, fuzz=fuzz))
    return path


def by_shrunk(failures: list[dict]) -> dict[tuple[str, str], dict]:
    return {(f["outcome"], f["shrunk"]): f for f in failures}


def test_fuzz_finds_shrinks_and_replays_the_qty_bugs(tmp_path, dsn, buggy_url, switch):
    fuzz = "    request: take\n    openapi: openapi.yaml\n    operation: POST /items/{item}/take\n    cases: 45"
    pipeline = write_pipeline(tmp_path, dsn, f"    url: {buggy_url}", fuzz)
    first = tmp_path / "runs" / "first"
    result = heisen("fuzz", str(pipeline), "--run-dir", str(first))
    assert result.returncode == 1, result.stderr
    phase = fuzz_outputs(first)
    assert phase["status"] == "failed"
    outputs = phase["outputs"]
    assert outputs["cases"] == 45 and outputs["regression"] == 0
    assert outputs["requests"] >= 45 and outputs["status_codes"]
    shrunk = by_shrunk(outputs["failures"])
    # a qty past INTEGER: a 500, shrunk to the first value out of range, whatever it started from
    assert ("5xx", '{"qty":2147483648}') in shrunk
    # a negative qty raises the stock: the SQL invariant, shrunk to -1
    assert ("invariant", '{"qty":-1}') in shrunk
    # qty 0 is accepted and echoed: the 201 breaks the document
    assert ("nonconforming", '{"qty":0}') in shrunk
    assert set(outputs["by_outcome"]) >= {"5xx", "invariant", "nonconforming"}
    # every edge past INTEGER (int32 max + 1, int64 max, ...) is the same bug: one finding, its hits
    out_of_range = shrunk[("5xx", '{"qty":2147483648}')]
    assert out_of_range["field"] == "qty" and out_of_range["hits"] >= 2
    assert [f["signature"] for f in outputs["failures"]].count(out_of_range["signature"]) == 1
    assert outputs["by_outcome"] == dict(Counter(f["outcome"] for f in outputs["failures"]))
    for failure in outputs["failures"]:
        assert set(failure) >= {"id", "outcome", "payload", "shrunk", "replay", "rerun"}
        assert set(failure) >= {"signature", "field", "hits", "cases", "body_file", "curl"}
        assert failure["cases"][0] == failure["id"] and len(failure["cases"]) == failure["hits"]
        for case_id in failure["cases"]:
            assert (first / "fuzz-corpus" / f"{case_id}.json").is_file()
        # the body the curl line sends is the shrunk payload, byte for byte
        assert (first / failure["body_file"]).read_text() == failure["shrunk"]
        assert f"--data-binary @{failure['body_file']}" in failure["curl"]
    assert len({f["signature"] for f in outputs["failures"]}) == len(outputs["failures"])
    assert outputs["corpus"] == "fuzz-corpus"
    assert FuzzOutputs.from_manifest(outputs).unknown_keys() == []  # every key is declared
    findings = outputs["findings"]
    assert {f["name"] for f in findings} >= {"5xx", "invariant", "nonconforming"}
    assert all(f["phase"] == "fuzz" and f["replay"] for f in findings)

    # the single-request replays exit 1 while the bug is there, 0 once the service is fixed
    nonconforming = shrunk[("nonconforming", '{"qty":0}')]
    for failure in (out_of_range, nonconforming):
        assert failure["replay"] == f"heisen fuzz replay {first} {failure['id']}"
        assert buggy_url in failure["curl"]
        replay = shell(failure["replay"])
        assert replay.returncode == 1, replay.stderr
    stored = json.loads((first / "fuzz" / f"{out_of_range['id']}.replay.json").read_text())
    assert stored["base_url"] == buggy_url
    switch["fixed"] = True
    for failure in (out_of_range, nonconforming):
        replay = shell(failure["replay"])
        assert replay.returncode == 0, replay.stderr
    switch["fixed"] = False
    # an invariant needs the system: its replay reruns the phase with the run's seed
    invariant = shrunk[("invariant", '{"qty":-1}')]
    assert invariant["replay"] == invariant["rerun"]
    assert invariant["rerun"] == f"heisen fuzz {pipeline} --seed 11"

    # the next run in the same runs folder tries the stored failures first
    pipeline.write_text(pipeline.read_text().replace("cases: 45", "cases: 2"))
    second = tmp_path / "runs" / "second"
    again = heisen("fuzz", str(pipeline), "--run-dir", str(second), "--seed", "99")
    assert again.returncode == 1, again.stderr
    outputs = fuzz_outputs(second)["outputs"]
    assert outputs["regression"] >= len(
        {f["shrunk"] for f in fuzz_outputs(first)["outputs"]["failures"]}
    )
    assert outputs["cases"] == outputs["regression"] + 2
    assert {"5xx", "invariant", "nonconforming"} <= set(outputs["by_outcome"])
    assert ("5xx", '{"qty":2147483648}') in by_shrunk(outputs["failures"])


def test_a_replica_that_dies_is_caught_with_fields_and_no_openapi(tmp_path, dsn):
    service = (
        '    command: ["{{ python }}", "stock_service.py"]\n'
        '    env: {DATABASE_URL: "{{ deps.postgres.dsn }}", CRASH_ON_NUL: "1"}\n'
        "    health: {path: /health, timeout: 20s}"
    )
    fuzz = "    fields:\n      note: {type: string}\n    cases: 32\n    shrink: false"
    pipeline = write_pipeline(tmp_path, dsn, service, fuzz)
    run_dir = tmp_path / "runs" / "one"
    result = heisen("fuzz", str(pipeline), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stderr
    outputs = fuzz_outputs(run_dir)["outputs"]
    died = [f for f in outputs["failures"] if f["outcome"] == "replica-died"]
    assert died and "\\u0000" in died[0]["payload"], outputs["failures"]
    assert died[0]["shrunk"] == died[0]["payload"]  # shrink: false
    assert outputs["by_outcome"] == {"replica-died": 1}  # the cases after the restart were answered
    assert "fuzz" in result.stderr


def test_a_correct_service_passes(tmp_path, dsn):
    with serve(lambda: make_app(dsn, fixed=True)) as url:
        fuzz = "    request: take\n    openapi: openapi.yaml\n    cases: 40"
        pipeline = write_pipeline(tmp_path, dsn, f"    url: {url}", fuzz)
        run_dir = tmp_path / "runs" / "ok"
        result = heisen("fuzz", str(pipeline), "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    outputs = fuzz_outputs(run_dir)["outputs"]
    assert outputs["failures"] == [] and outputs["corpus"] is None
    assert outputs["operation"] == "POST /items/{item}/take"


def processes_marked(mark: str) -> list[int]:
    """The live processes whose environment holds `REPLAY_MARK=mark` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if f"REPLAY_MARK={mark}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_a_replay_starts_the_service_heisen_started_and_stops_it(tmp_path, dsn):
    mark = uuid.uuid4().hex
    service = (
        '    command: ["{{ python }}", "stock_service.py"]\n'
        f'    env: {{DATABASE_URL: "{{{{ deps.postgres.dsn }}}}", FIXED: "0", REPLAY_MARK: {mark}}}\n'
        "    health: {path: /health, timeout: 20s}"
    )
    fuzz = "    request: take\n    openapi: openapi.yaml\n    cases: 20"
    pipeline = write_pipeline(tmp_path, dsn, service, fuzz)
    run_dir = tmp_path / "runs" / "one"
    result = heisen("fuzz", str(pipeline), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stderr
    failures = fuzz_outputs(run_dir)["outputs"]["failures"]
    echoed = by_shrunk(failures)[("nonconforming", '{"qty":0}')]
    stored = json.loads((run_dir / "fuzz" / f"{echoed['id']}.replay.json").read_text())
    # no URL outlives the run: the replay names the pipeline and the service to start
    assert stored["base_url"] is None and stored["service"] == "stock"
    assert stored["pipeline"] == str(pipeline.resolve())
    assert processes_marked(mark) == []

    replay = heisen("fuzz", "replay", str(run_dir), echoed["id"])
    assert replay.returncode == 1, replay.stderr  # the service answered: it was started
    assert processes_marked(mark) == []  # and stopped

    pipeline.write_text(pipeline.read_text().replace('FIXED: "0"', 'FIXED: "1"'))
    replay = heisen("fuzz", "replay", str(run_dir), echoed["id"])
    assert replay.returncode == 0, replay.stderr
    assert processes_marked(mark) == []
