"""`heisen fuzz --openapi SPEC --url BASE`: exit codes, the JSON on stdout, shrunk failures, real replays."""

from __future__ import annotations

import json
import shlex
import subprocess
from functools import partial
from pathlib import Path

import pytest
from fuzz_servers import serve
from orders_service import make_app

import support
from heisen.cli._adhoc import show_fuzz
from heisen.errors import PipelineError, SystemUnavailable, UsageError
from heisen.fuzz.adhoc import run_adhoc_fuzz

SPEC = Path(__file__).parent / "orders_openapi.yaml"


heisen = partial(support.heisen, "fuzz", timeout=120)


def failures_by_outcome(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for failure in report["failures"]:
        found.setdefault(failure["outcome"], []).append(failure)
    return found


@pytest.mark.slow
def test_a_buggy_service_exits_1_with_pure_json_and_replays_that_fail(tmp_path):
    run_dir = tmp_path / "runs" / "a"
    with serve(make_app) as url:
        result = heisen(
            "--openapi",
            str(SPEC),
            "--url",
            url,
            "--cases",
            "80",
            "--seed",
            "3",
            "--run-dir",
            str(run_dir),
            "--json",
        )
        assert result.returncode == 1, result.stderr
        data = json.loads(result.stdout)  # nothing but the JSON on stdout
        assert data == json.loads((run_dir / "fuzz.json").read_text())
        assert data["status"] == "failed" and data["seed"] == 3
        post, get = data["operations"]
        assert (post["operation"], get["operation"]) == ("POST /orders", "GET /orders/{order_id}")
        assert get["failures"] == [] and get["requests"] >= get["cases"]
        found = failures_by_outcome(post)
        assert set(found) == {"5xx", "nonconforming", "reset"}
        shrunk = {
            (f["outcome"], f["shrunk"]) for f in post["failures"] if not f.get("duplicate_of")
        }
        assert ("5xx", '{"user":"","qty":2147483648}') in shrunk
        assert ("nonconforming", '{"user":"","qty":0}') in shrunk
        assert ("reset", '{"user":"\\u0000","qty":0}') in shrunk
        assert (run_dir / "fuzz-corpus").is_dir()
        for outcome in ("5xx", "nonconforming", "reset"):
            head = next(f for f in found[outcome] if not f.get("duplicate_of"))
            replay = subprocess.run(
                shlex.split(head["replay"]), capture_output=True, text=True, timeout=30
            )
            assert replay.returncode == 1, (outcome, replay.stderr)
        assert "--seed 3" in post["rerun"]
    with serve(lambda: make_app(fixed=True)) as fixed_url:
        head = next(f for f in found["5xx"] if not f.get("duplicate_of"))
        words = [
            fixed_url + "/orders" if w.endswith("/orders") else w
            for w in shlex.split(head["replay"])
        ]
        assert subprocess.run(words, capture_output=True, timeout=30).returncode == 0


def test_a_correct_service_exits_0_and_the_corpus_is_tried_first(tmp_path, capsys):
    runs = tmp_path / "runs"
    with serve(make_app) as url:
        first = run_adhoc_fuzz(
            SPEC, url, operation="POST /orders", cases=60, seed=5, run_dir=runs / "one"
        )
        assert show_fuzz(first, as_json=True) == 1
    capsys.readouterr()
    with serve(lambda: make_app(fixed=True)) as url:
        result = run_adhoc_fuzz(
            SPEC, url, operation="post /orders", cases=5, seed=6, run_dir=runs / "two"
        )
        code = show_fuzz(result, as_json=True)
        out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    (report,) = data["operations"]
    assert report["regression"] > 0 and report["cases"] == report["regression"] + 5
    assert report["failures"] == [] and data["status"] == "passed"


def test_the_table_for_humans(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the same table whatever terminal runs the tests
    with serve(make_app) as url:
        result = run_adhoc_fuzz(
            SPEC, url, operation="POST /orders", cases=40, seed=1, run_dir=tmp_path / "r"
        )
        code = show_fuzz(result, as_json=False)
    captured = capsys.readouterr()
    assert code == 1 and captured.err == ""
    assert (
        "POST /orders" in captured.out
        and "nonconforming" in captured.out
        and "failed:" in captured.out
    )


def test_usage_and_environment_errors(tmp_path, free_tcp_port):
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.0.3\npaths: [1, 2]\n")
    with pytest.raises(PipelineError):
        run_adhoc_fuzz(
            broken,
            "http://127.0.0.1:1",
            operation=None,
            cases=5,
            seed=1,
            run_dir=tmp_path / "a",
        )
    with pytest.raises(UsageError, match="did you mean 'POST /orders'"):
        run_adhoc_fuzz(
            SPEC,
            "http://127.0.0.1:1",
            operation="POST /order",
            cases=5,
            seed=1,
            run_dir=tmp_path / "b",
        )
    with pytest.raises(UsageError, match="not a loopback address"):
        run_adhoc_fuzz(
            SPEC,
            "http://example.com",
            operation=None,
            cases=5,
            seed=1,
            run_dir=tmp_path / "c",
        )
    with pytest.raises(SystemUnavailable, match="cannot reach"):
        run_adhoc_fuzz(
            SPEC,
            f"http://127.0.0.1:{free_tcp_port}",
            operation=None,
            cases=5,
            seed=1,
            run_dir=tmp_path / "d",
        )


@pytest.mark.slow
def test_exit_codes_2_and_3_from_the_command_line(tmp_path, free_tcp_port):
    unknown = heisen(
        "--openapi", str(SPEC), "--url", "http://127.0.0.1:1", "--operation", "DELETE /orders"
    )
    assert unknown.returncode == 2 and "has no operation 'DELETE /orders'" in unknown.stderr
    assert unknown.stdout == ""
    down = heisen("--openapi", str(SPEC), "--url", f"http://127.0.0.1:{free_tcp_port}", "--json")
    assert down.returncode == 3 and "cannot reach" in down.stderr and down.stdout == ""
