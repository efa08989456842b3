"""`protocol: auto`: the probe against real servers, the burst it chooses, the ad hoc mode."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from heisen.cli._adhoc import show_load
from heisen.errors import SystemUnavailable, UsageError
from heisen.schema import LoadStep, RequestTemplate
from heisen.stress import _protocol
from heisen.stress._load import LoadOutcome, run_steps
from heisen.stress._protocol import Negotiated, forget_negotiated, negotiate
from heisen.stress._render import RequestFactory
from heisen.stress._tls import TlsClient
from heisen.stress.adhoc import AdHocLoad, plan, run_adhoc
from heisen.system._process import ManagedProcess, spawn
from support import free_port, wait_for_port

SERVERS = Path(__file__).with_name("_protocol_servers.py")

Server = Any  # conftest's servers and `Started`: a host, a port and a process


@dataclass(frozen=True)
class Started:
    host: str
    port: int
    process: ManagedProcess


Start = Callable[..., Started]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forget_negotiated()
    yield
    forget_negotiated()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a `_protocol_servers.py` server of this test; all stopped at its end."""
    started: list[Started] = []

    def run(kind: str, *files: Path) -> Started:
        port = free_port()
        process = spawn(
            f"{kind}-server",
            [sys.executable, str(SERVERS), kind, str(port), *map(str, files)],
            log_path=tmp_path / f"{kind}-{port}.log",
        )
        server = Started("127.0.0.1", port, process)
        started.append(server)
        if not wait_for_port("127.0.0.1", port, deadline_s=20):
            raise RuntimeError(f"{kind} server did not start:\n{process.tail()}")
        return server

    try:
        yield run
    finally:
        for server in started:
            server.process.stop(grace_s=2)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate chain, server key) for 127.0.0.1."""
    where = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    issued.private_key_pem.write_to_path(str(where / "key.pem"))
    issued.cert_chain_pems[0].write_to_path(str(where / "cert.pem"))
    for blob in issued.cert_chain_pems[1:]:
        blob.write_to_path(str(where / "cert.pem"), append=True)
    return where / "ca.pem", where / "cert.pem", where / "key.pem"


def probe(server: Server, tls: TlsClient | None = None) -> Negotiated:
    return asyncio.run(negotiate(server.host, server.port, tls=tls))


# ------------------------------------------------------------------ without TLS: the h2c preface


def test_hypercorn_answers_the_h2c_preface(start: Start, no_leaked_sockets: None) -> None:
    assert probe(start("hypercorn")) == Negotiated("h2", "server answered the h2c preface")


def test_an_h2_server_answers_the_h2c_preface(h2_server: Server) -> None:
    assert probe(h2_server) == Negotiated("h2", "server answered the h2c preface")


def test_an_http1_server_is_http1_and_the_reason_quotes_its_answer(
    aiohttp_server: Server, no_leaked_sockets: None
) -> None:
    found = probe(aiohttp_server)
    assert found.protocol == "http/1.1"
    assert found.reason.startswith("no h2c: the server answered HTTP/1.")
    assert "400" in found.reason


def test_a_server_that_never_answers_is_http1_once_the_probe_times_out(
    start: Start, no_leaked_sockets: None
) -> None:
    silent = start("silent")
    found = asyncio.run(
        asyncio.wait_for(negotiate(silent.host, silent.port, timeout_s=0.3), timeout=10)
    )
    assert found == Negotiated("http/1.1", "no h2c: no answer to the preface within 0.3s")


def test_a_closed_port_is_unavailable_and_says_so(no_leaked_sockets: None) -> None:
    port = free_port()
    with pytest.raises(SystemUnavailable, match=f"nothing is listening on 127.0.0.1:{port}"):
        asyncio.run(negotiate("127.0.0.1", port))


def test_the_answer_is_kept_for_the_process_and_the_cache_is_bounded(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = start("hypercorn"), start("hypercorn")
    assert probe(first).protocol == "h2"
    first.process.stop(grace_s=2)
    assert probe(first).protocol == "h2", "a known target is not probed again"
    monkeypatch.setattr(_protocol, "CACHE_SIZE", 1)
    assert probe(second).protocol == "h2"
    with pytest.raises(SystemUnavailable):  # pushed out by `second`: probed again, and gone
        probe(first)


# ------------------------------------------------------------------ with TLS: ALPN


def offering_both(ca: Path) -> TlsClient:
    return TlsClient.make(ca, alpn=("h2", "http/1.1"))


def test_alpn_h2_over_tls(
    start: Start, certificates: tuple[Path, Path, Path], no_leaked_sockets: None
) -> None:
    ca, cert, key = certificates
    server = start("hypercorn", cert, key)
    assert probe(server, tls=offering_both(ca)) == Negotiated("h2", "ALPN chose h2")


def test_a_tls_server_offering_only_http1_is_http1(
    start: Start, certificates: tuple[Path, Path, Path], no_leaked_sockets: None
) -> None:
    ca, cert, key = certificates
    server = start("tls-http1", cert, key)
    assert probe(server, tls=offering_both(ca)) == Negotiated("http/1.1", "ALPN chose http/1.1")


def test_an_untrusted_certificate_is_unavailable_and_says_why(
    start: Start, certificates: tuple[Path, Path, Path], no_leaked_sockets: None
) -> None:
    _, cert, key = certificates
    server = start("hypercorn", cert, key)
    other_ca = Path(cert.parent / "other-ca.pem")
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with pytest.raises(SystemUnavailable, match="certificate verify failed"):
        probe(server, tls=offering_both(other_ca))


# ------------------------------------------------------------------ the burst speaks what was found


def step(data: dict[str, Any]) -> LoadStep:
    return LoadStep.model_validate(data)


def burst_at(
    server: Server, templates: dict[str, RequestTemplate], load: list[LoadStep]
) -> LoadOutcome:
    factory = RequestFactory(templates, trial=1, seed=1, run_id="t")
    return asyncio.run(
        run_steps(
            load, factory, host=server.host, port=server.port, templates=templates, timeout_s=10
        )
    )


def test_an_auto_burst_speaks_h2_to_hypercorn_and_each_burst_is_recorded(start: Start) -> None:
    server = start("hypercorn")
    templates = {"v": RequestTemplate(path="/", protocol="auto")}
    load = [step({"burst": {"requests": 8}}), step({"pause": {"during": "1ms"}}),
            step({"burst": {"requests": 3}})]  # fmt: skip
    outcome = burst_at(server, templates, load)
    assert {record.body for record in outcome.records} == {b"2"}, "HTTP/2 as hypercorn saw it"
    bursts = outcome.bursts
    assert [(b.step, b.requests, b.protocol) for b in bursts] == [(0, 8, "h2"), (2, 3, "h2")]
    assert {b.reason for b in bursts} == {"server answered the h2c preface"}
    assert all(b.connections >= 1 and b.release_spread_ms >= 0 for b in bursts)


def test_an_auto_burst_speaks_http1_to_aiohttp(aiohttp_server: Server) -> None:
    templates = {"v": RequestTemplate(path="/", protocol="auto")}
    (burst,) = burst_at(aiohttp_server, templates, [step({"burst": {"requests": 5}})]).bursts
    assert (burst.protocol, burst.connections) == ("http/1.1", 5)
    assert burst.reason.startswith("no h2c: the server answered HTTP/1.")


def test_a_burst_mixing_protocols_is_refused_before_anything_is_sent(
    aiohttp_server: Server,
) -> None:
    templates = {
        "a": RequestTemplate(path="/", protocol="h2"),
        "b": RequestTemplate(path="/", protocol="http/1.1"),
    }
    load = [step({"burst": {"requests": 4, "mix": {"a": 1, "b": 1}}})]
    with pytest.raises(UsageError, match=r"load step 0: .*\(a: h2, b: http/1.1\)"):
        burst_at(aiohttp_server, templates, load)


# ------------------------------------------------------------------ ad hoc: --protocol


def test_adhoc_auto_says_what_it_chose_and_why(h2_server: Server, aiohttp_server: Server) -> None:
    for server, used, reason in (
        (h2_server, "h2", "server answered the h2c preface"),
        (aiohttp_server, "http/1.1", "no h2c: the server answered HTTP/1."),
    ):
        url = f"http://{server.host}:{server.port}/"
        shown = run_adhoc(AdHocLoad(url=url, burst=6, protocol="auto")).to_dict()
        assert shown["protocol"]["asked"] == "auto" and shown["protocol"]["used"] == used
        assert shown["protocol"]["reason"].startswith(reason)
        assert shown["status_codes"] == {"200": 6}
        assert [run["protocol"] for run in shown["runs"]] == [used]


def test_adhoc_http2_is_protocol_h2() -> None:
    url = "http://127.0.0.1:1/"
    assert plan(AdHocLoad(url=url, burst=2, http2=True)).protocol == "h2"
    assert plan(AdHocLoad(url=url, burst=2, http2=True, protocol="h2")).http2
    assert plan(AdHocLoad(url=url, burst=2)).protocol == "http/1.1"


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (AdHocLoad(url="http://127.0.0.1:1/", burst=2, http2=True, protocol="auto"),
         "--http2 means --protocol h2, not --protocol auto"),
        (AdHocLoad(url="http://127.0.0.1:1/", burst=2, protocol="h3"),
         "--protocol 'h3': choose auto, http/1.1 or h2"),
        (AdHocLoad(url="http://127.0.0.1:1/", rate="5", duration="1s", protocol="auto"),
         "--protocol auto applies to --burst only"),
    ],
)  # fmt: skip
def test_adhoc_protocol_mistakes_are_usage_errors(load: AdHocLoad, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(load)


def test_adhoc_table_says_the_protocol_and_why(
    h2_server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    url = f"http://{h2_server.host}:{h2_server.port}/"
    assert show_load(run_adhoc(AdHocLoad(url=url, burst=4, protocol="auto")), as_json=False) == 0
    shown = capsys.readouterr().out
    assert "burst of 4 (auto)" in shown
    assert "h2 (server answered the h2c preface)" in shown
