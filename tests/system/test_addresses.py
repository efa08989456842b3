"""The loopback rule: addresses parsed and resolved, DSNs read as libpq reads them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from heisen.errors import PipelineError, UsageError
from heisen.pipeline import load_pipeline
from heisen.system._addresses import (
    check_address,
    check_allowed,
    host_port,
    is_loopback_address,
    loopback_problems,
    with_host_port,
)

ALLOWED = [
    "http://127.0.0.1:8080/x",
    "http://127.1.2.3/",
    "http://localhost:8080",
    "http://[::1]:80/",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",  # inet_aton's reading of 127.0.0.1, as every client resolves it
    "postgresql://app:pw@127.0.0.1:5432/db",
    "postgresql:///db",  # libpq's default: a Unix socket
    "postgresql:///db?host=/var/run/postgresql",
    "host=/tmp dbname=x",
    "host=localhost,127.0.0.2 port=1,2 dbname=x",
    "host=db.example.com hostaddr=127.0.0.1 dbname=x",  # libpq connects to hostaddr
    "redis://127.0.0.1:6379/0",
    "redis://",  # redis-py's default host: localhost
    "rediss://:p@ss@127.0.0.1:6380/0",
    "unix:///tmp/redis.sock?db=1",
]

REFUSED = {
    "http://127.0.0.1.example.com/": "'127.0.0.1.example.com' is not a loopback address: it does not resolve",
    "http://no-such-host.invalid:80/": "'no-such-host.invalid' is not a loopback address: it does not resolve",
    "http://0.0.0.0/": "'0.0.0.0' is not a loopback address",
    "http://[::ffff:10.0.0.1]/": "'::ffff:10.0.0.1' is not a loopback address",
    "http://192.0.2.7@127.0.0.1/": "",  # user info, host is 127.0.0.1: allowed (see below)
    "http://127.0.0.1\\@192.0.2.7/": "a backslash",
    "http://127.0.0.1%2e192.0.2.7/": "not a plain host name",
    "postgresql://u:p@127.0.0.1/x?host=192.168.1.5": "'192.168.1.5' (from the DSN)",
    "postgresql://u:p@127.0.0.1,192.0.2.9:5432/x": "'192.0.2.9'",
    "host=127.0.0.1 hostaddr=192.0.2.9 dbname=x": "'192.0.2.9' (from hostaddr= in the DSN)",
    "host=/tmp,192.0.2.9 dbname=x": "'192.0.2.9'",
    "service=prod": "pg_service.conf",
    "host='127.0.0.1": "not a valid PostgreSQL DSN",
    "redis:///0?host=10.0.0.1": "'10.0.0.1' (from ?host= in the URL)",
    "redis://192.0.2.1:6379": "'192.0.2.1' is not a loopback address",
    "http://127.0.0.1:99999/": "not a valid URL",
}


@pytest.mark.parametrize("address", ALLOWED)
def test_loopback_addresses_pass(address: str) -> None:
    assert loopback_problems(address, []) == []


@pytest.mark.parametrize(("address", "why"), REFUSED.items())
def test_everything_else_is_refused_with_the_host_and_why(address: str, why: str) -> None:
    problems = loopback_problems(address, [])
    if not why:
        assert problems == []
        return
    assert len(problems) >= 1 and why in " ".join(problems), problems


def test_every_host_of_a_list_is_checked() -> None:
    problems = loopback_problems("host=192.0.2.1,localhost,192.0.2.2 dbname=x", [])
    assert [p.split("'")[1] for p in problems] == ["192.0.2.1", "192.0.2.2"]


def test_allow_hosts_names_hosts_addresses_and_networks() -> None:
    assert loopback_problems("http://DB.Example.com./", ["db.example.com"]) == []
    assert loopback_problems("http://[2001:db8::1]/", ["2001:db8:0::1"]) == []
    assert loopback_problems("host=10.1.2.3 dbname=x", ["10.0.0.0/8"]) == []
    assert loopback_problems("http://10.1.2.3/", ["10.1.2.4"]) != []
    # a network matches literal addresses only, never a name that resolves into it
    assert loopback_problems("http://evil.invalid/", ["0.0.0.0/0"]) != []


def test_libpq_environment_defaults_are_what_a_hostless_dsn_reaches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGHOST", "192.0.2.44")
    assert "192.0.2.44" in loopback_problems("dbname=x", [])[0]
    assert loopback_problems("host=127.0.0.1 dbname=x", []) == []
    monkeypatch.delenv("PGHOST")
    monkeypatch.setenv("PGSERVICE", "prod")
    assert "pg_service.conf" in loopback_problems("dbname=x", [])[0]


def test_loopback_addresses_are_parsed() -> None:
    for address in ("127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.9"):
        assert is_loopback_address(address)
    for address in ("128.0.0.1", "0.0.0.0", "::", "::ffff:8.8.8.8", "localhost", "127.0.0.1.x"):
        assert not is_loopback_address(address)


def test_checks_raise_a_usage_error_naming_where() -> None:
    with pytest.raises(UsageError, match=r"services\.api: host '192\.0\.2\.3'"):
        check_address("http://192.0.2.3/", [], "services.api")
    with pytest.raises(UsageError, match=r"--url: host '127\.0\.0\.1\.example\.com'"):
        check_allowed("127.0.0.1.example.com", [], "--url")
    check_allowed("[::1]", [], "--url")


def test_key_value_dsns_are_pointed_at_a_link_proxy_by_libpq_rules(
    embedded_postgres: object,
) -> None:
    port = embedded_postgres.port  # type: ignore[attr-defined]
    dsn = f"host=127.0.0.1 port={port} user=postgres password = 'two words' dbname=postgres"
    assert host_port(dsn, 5432) == ("127.0.0.1", port)
    moved = with_host_port(dsn, "127.0.0.1", port)  # same place: the DSN still connects
    with psycopg.connect(moved, connect_timeout=5) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert psycopg.conninfo.conninfo_to_dict(moved)["password"] == "two words"
    url = "postgresql://postgres:p%40ss@127.0.0.1:1/postgres?host=127.0.0.9&sslmode=disable"
    rewritten = with_host_port(url, "127.0.0.1", port)
    assert rewritten == f"postgresql://postgres:p%40ss@127.0.0.1:{port}/postgres?sslmode=disable"
    with pytest.raises(UsageError, match="Unix-socket"):
        host_port("host=/tmp dbname=x", 5432)


def _pipeline(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "apiVersion: heisen/v1\nkind: Pipeline\nname: t\n"
        + body
        + "scenario:\n  requests:\n    a: {path: /}\n  load:\n    - burst: {requests: 2}\n"
    )
    return path


def test_validate_reports_each_violation_at_its_path_and_line(tmp_path: Path) -> None:
    stub = tmp_path / "stub" / "mappings"
    stub.mkdir(parents=True)
    (stub / "p.json").write_text(
        '{"request": {"url": "/x"}, "response": {"proxyBaseUrl": "http://192.0.2.50"}}'
    )
    path = _pipeline(
        tmp_path,
        "dependencies:\n"
        "  pg:\n    kind: postgres\n"
        '    dsn: "postgresql://u:p@127.0.0.1/x?host=192.168.1.5"\n'
        "  pay:\n    kind: http\n    url: http://127.0.0.1:9/\n    stub: stub\n"
        "services:\n  app:\n    url: http://127.0.0.1.example.com:8080\n",
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    found = {(p.path, p.line): p.message for p in caught.value.problems}
    assert "192.168.1.5" in found[("dependencies.pg.dsn", 7)]
    assert "127.0.0.1.example.com" in found[("services.app.url", 14)]
    assert "192.0.2.50" in found[("dependencies.pay.stub", 11)]
    assert "p.json" in found[("dependencies.pay.stub", 11)]
    allowed = path.read_text().replace(
        "name: t\n", "name: t\nallow_hosts: [192.168.1.5, 127.0.0.1.example.com, 192.0.2.50]\n"
    )
    path.write_text(allowed)
    load_pipeline(path)
