"""`heisen fuzz --openapi SPEC --url BASE`: exit codes, the JSON on stdout, shrunk failures, real replays."""

from __future__ import annotations

import json
import shlex
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
    switch = {"fixed": False}
    with serve(lambda: make_app(switch=switch)) as url:
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
        # one finding per bug: no two share a signature, and the cases that hit it are counted
        assert len({f["signature"] for f in post["failures"]}) == len(post["failures"])
        for failure in post["failures"]:
            assert "duplicate_of" not in failure
            assert failure["cases"][0] == failure["id"] and len(failure["cases"]) == failure["hits"]
        (server_error,) = found["5xx"]  # every integer past int32 is the same 500
        (reset,) = found["reset"]
        assert server_error["field"] == "qty" and server_error["hits"] >= 2
        assert server_error["shrunk"] == '{"user":"","qty":2147483648}'
        # the NUL stays, the qty shrinks as far as it stays valid (0 would be another bug)
        assert reset["field"] == "user" and reset["shrunk"] == '{"user":"\\u0000","qty":1}'
        # qty 0 is echoed against the document; shrinking keeps a 1-character user, since an
        # empty one is another finding (another signature), and the user one stays separate
        nonconforming = {f["field"]: f for f in found["nonconforming"]}
        (below,) = [f for f in found["nonconforming"] if "below the minimum" in f["signature"]]
        assert below["field"] == "qty" and below["hits"] >= 2  # 0 and -1 alike
        small = json.loads(below["shrunk"])
        assert small["qty"] == 0 and len(small["user"]) == 1, below["shrunk"]
        assert "user" in nonconforming and "qty" in nonconforming
        assert (run_dir / "fuzz-corpus").is_dir()
        for failure in (server_error, reset, below):
            assert failure["replay"] == shlex.join(
                ["heisen", "fuzz", "replay", str(run_dir), failure["id"]]
            )
            replay = heisen("replay", str(run_dir), failure["id"])
            assert replay.returncode == 1, (failure["outcome"], replay.stderr)
        assert "--seed 3" in post["rerun"]
        switch["fixed"] = True
        for failure in (server_error, reset, below):
            replay = heisen("replay", str(run_dir), failure["id"])
            assert replay.returncode == 0, (failure["outcome"], replay.stderr)


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
    # a row per finding, saying how many more cases failed alike
    (report,) = result.operations
    for failure in report.failures:
        assert failure.label in captured.out
        if failure.hits > 1:
            assert f"{failure.outcome} (+{failure.hits - 1} alike)" in captured.out
    assert any(failure.hits > 1 for failure in report.failures)


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
