"""Staging targets only when named: ad hoc `--allow-host HOST` and a pipeline's `allow_hosts:`.

One rule (`heisen.system._addresses`): a host every address of which is loopback needs no
naming (127.0.0.1, ::1, `localhost` through /etc/hosts); any other is refused, before any
traffic, unless named by its name, its address, or a CIDR network holding its address.
Refused targets here are in 192.0.2.0/24 (TEST-NET-1, RFC 5737): nothing is ever sent there,
because a refusal happens before traffic and an accepted plan is checked without running it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from heisen.errors import UsageError
from heisen.stress.adhoc import AdHocLoad, plan
from support import heisen, serve_app, write

STAGING = "http://192.0.2.10:8080/orders"


def counting_app() -> object:
    from aiohttp import web

    async def hit(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hit)
    return app


# ------------------------------------------------------------------ ad hoc


def test_a_host_that_is_not_loopback_is_refused_naming_the_flag() -> None:
    result = heisen("stress", "--url", STAGING, "--burst", "1")
    assert result.returncode == 2
    assert "192.0.2.10" in result.stderr and "not a loopback address" in result.stderr
    assert "--allow-host HOST" in result.stderr


@pytest.mark.parametrize(
    "allowed", [["192.0.2.10"], ["192.0.2.0/24"], ["10.0.0.1", "192.0.2.10"], [" 192.0.2.10 "]]
)
def test_a_named_host_is_accepted_by_address_or_network(allowed: list[str]) -> None:
    chosen = plan(AdHocLoad(url=STAGING, burst=3, allow_hosts=allowed))
    assert (chosen.host, chosen.port, chosen.size) == ("192.0.2.10", 8080, 3)


def test_naming_another_host_does_not_allow_this_one() -> None:
    with pytest.raises(UsageError, match="--allow-host"):
        plan(AdHocLoad(url=STAGING, burst=1, allow_hosts=["192.0.2.11", "192.0.3.0/24"]))


def test_a_host_name_is_matched_by_name_case_insensitively() -> None:
    """A named host is accepted before it is resolved (no DNS query here)."""
    url = "http://staging.invalid:8080/"
    chosen = plan(AdHocLoad(url=url, burst=1, allow_hosts=["Staging.Invalid."]))
    assert chosen.host == "staging.invalid"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_needs_no_naming(host: str) -> None:
    assert plan(AdHocLoad(url=f"http://{host}:8080/", burst=1)).port == 8080


def test_allow_host_on_the_command_line_lets_traffic_through_to_a_named_loopback_alias() -> None:
    """Traffic only to loopback in tests: `localhost` named explicitly still loads it."""
    with serve_app(counting_app) as base:
        port = base.rsplit(":", 1)[1]
        result = heisen(
            "stress", "--url", f"http://localhost:{port}/", "--burst", "3",
            "--allow-host", "localhost", "--allow-host", "192.0.2.0/24", "--json",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"200": 3' in result.stdout


# ------------------------------------------------------------------ pipeline


PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: staging
ALLOW
dependencies:
  payments: {kind: http, url: "DEP"}
services:
  web: {url: "URL"}
scenario:
  requests:
    hit: {method: GET, path: /}
  load:
    - burst: {requests: 2}
"""


def pipeline(directory: Path, *, url: str, dep: str, allow: str = "") -> Path:
    text = PIPELINE.replace("URL", url).replace("DEP", dep)
    return write(directory, text.replace("ALLOW\n", f"allow_hosts: {allow}\n" if allow else ""))


def test_validate_locates_each_host_not_named_under_allow_hosts(tmp_path: Path) -> None:
    path = pipeline(tmp_path, url=STAGING, dep="https://192.0.2.20/pay")
    result = heisen("validate", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "services.web.url (line 7:" in output and "'192.0.2.10'" in output
    assert "dependencies.payments.url (line 5:" in output and "'192.0.2.20'" in output
    assert output.count("list it under allow_hosts:") == 2


def test_validate_accepts_hosts_named_under_allow_hosts(tmp_path: Path) -> None:
    path = pipeline(
        tmp_path,
        url=STAGING,
        dep="https://192.0.2.20/pay",
        allow="[192.0.2.10, 192.0.2.16/28]",
    )
    result = heisen("validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_still_refuses_the_host_allow_hosts_does_not_name(tmp_path: Path) -> None:
    path = pipeline(tmp_path, url=STAGING, dep="https://192.0.2.20/pay", allow="[192.0.2.10]")
    result = heisen("validate", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "dependencies.payments.url" in output and "services.web.url" not in output


def test_a_pipeline_refuses_before_any_traffic_when_run(tmp_path: Path) -> None:
    path = pipeline(tmp_path, url=STAGING, dep="http://127.0.0.1:9/")
    result = heisen("stress", str(path), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "services.web.url" in result.stdout + result.stderr
    assert "list it under allow_hosts:" in result.stdout + result.stderr
