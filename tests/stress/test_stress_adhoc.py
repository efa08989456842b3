"""`heisen stress --url ...`: ad hoc load against a real loopback server, no pipeline."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

import support
from heisen.cli._adhoc import show_load
from heisen.errors import SystemUnavailable, UsageError
from heisen.stress.adhoc import AdHocLoad, parse_rate, plan, run_adhoc
from support import free_port

Server = Any
ENV = {"NO_COLOR": "1", "COLUMNS": "120", "PATH": "/usr/bin:/bin"}


heisen = partial(support.heisen, timeout=60)


def url_of(server: Server, path: str = "/") -> str:
    return f"http://{server.host}:{server.port}{path}"


def run_json(load: AdHocLoad, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert show_load(run_adhoc(load), as_json=True) == 0
    out = capsys.readouterr().out
    result: dict[str, Any] = json.loads(out)
    return result


def test_burst_reports_the_release_spread(
    aiohttp_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_json(AdHocLoad(url=url_of(aiohttp_server), burst=50, repeat=2), capsys)
    assert result["requests"] == 100 and result["status_codes"] == {"200": 100}
    assert result["model"] == {
        "kind": "burst",
        "requests": 50,
        "http2": False,
        "protocol": "http/1.1",
    }
    assert result["protocol"] == {"asked": "http/1.1", "used": "http/1.1", "reason": "asked for"}
    assert len(result["runs"]) == 2
    assert 0 <= result["release_spread_ms"]["median"] <= result["release_spread_ms"]["max"] < 200


def test_rate_keeps_the_rate_and_corrects_latency(
    aiohttp_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_json(AdHocLoad(url=url_of(aiohttp_server), rate="200/s", duration="1s"), capsys)
    assert result["requests"] == 200 and result["errors"] == {}
    assert 140 < result["rps"] < 260
    for name in ("p50", "p75", "p90", "p95", "p99", "p99.9", "max"):
        assert result["latency_ms"][name] >= result["latency_uncorrected_ms"][name] * 0.99


def test_concurrency_posts_the_body_with_headers(
    aiohttp_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    load = AdHocLoad(
        url=url_of(aiohttp_server, "/echo"), method="POST", headers=["X-Test: 1"], data='{"a": 1}',
        concurrency=4, duration="300ms",
    )  # fmt: skip
    result = run_json(load, capsys)
    assert result["method"] == "POST" and result["model"]["copies"] == 4
    assert result["requests"] > 4 and set(result["status_codes"]) == {"200"}


def test_human_output_is_a_table_on_stdout(
    aiohttp_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert show_load(run_adhoc(AdHocLoad(url=url_of(aiohttp_server), burst=10)), as_json=False) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    for word in (
        "requests",
        "rps",
        "p99.9",
        "corrected",
        "uncorrected",
        "status codes",
        "burst release spread",
    ):
        assert word in captured.out


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (AdHocLoad(url="http://127.0.0.1:1/", burst=5, rate="5/s"), "exactly one load model"),
        (AdHocLoad(url="http://127.0.0.1:1/"), "exactly one load model"),
        (AdHocLoad(url="http://127.0.0.1:1/", rate="5/s"), "needs --duration"),
        (AdHocLoad(url="http://127.0.0.1:1/", burst=5, duration="1s"), "--duration goes with"),
        (AdHocLoad(url="http://127.0.0.1:1/", rate="fast", duration="1s"), "--rate 'fast'"),
        (AdHocLoad(url="http://127.0.0.1:1/", concurrency=2, duration="soon"), "--duration"),
        (
            AdHocLoad(url="http://127.0.0.1:1/", rate="5", duration="1s", http2=True),
            "--http2 applies",
        ),
        (AdHocLoad(url="http://127.0.0.1:1/", burst=5, headers=["nocolon"]), "Name: value"),
        (AdHocLoad(url="ftp://127.0.0.1:1/", burst=5), "http:// or https://"),
        (AdHocLoad(url="http://example.com/", burst=5), "not a loopback address"),
    ],
)
def test_bad_options_are_usage_errors(load: AdHocLoad, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        plan(load)


def test_rates() -> None:
    assert parse_rate("500/s") == parse_rate("500") == 500.0
    assert parse_rate("600/m") == 10.0


def test_unreachable_is_system_unavailable() -> None:
    with pytest.raises(SystemUnavailable, match="nothing is listening"):
        run_adhoc(AdHocLoad(url=f"http://127.0.0.1:{free_port()}/", burst=3))


@pytest.mark.slow
def test_cli_exit_codes_and_pure_json(aiohttp_server: Server) -> None:
    ok = heisen("stress", "--url", url_of(aiohttp_server), "--burst", "20", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["requests"] == 20
    both = heisen("stress", "--url", url_of(aiohttp_server), "--burst", "5", "--concurrency", "2")
    assert (
        both.returncode == 2
        and "exactly one load model" in both.stderr
        and "Traceback" not in both.stderr
    )
    remote = heisen("stress", "--url", "http://192.0.2.1/", "--burst", "5")
    assert remote.returncode == 2 and "not a loopback address" in remote.stderr
    down = heisen(
        "stress", "--url", f"http://127.0.0.1:{free_port()}/", "--rate", "10/s", "--duration", "1s"
    )
    assert (
        down.returncode == 3
        and "nothing is listening" in down.stderr
        and "Traceback" not in down.stderr
    )
    assert down.stdout == ""
