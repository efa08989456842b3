"""Secrets never leave heisen in clear: the rules, then a real run seeded with secrets everywhere."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from heisen._redact import (
    MASK,
    RedactingFormatter,
    is_secret_name,
    redact,
    redact_argv,
    redact_text,
)
from heisen.manifest import RunInfo, RunManifest


def test_passwords_in_urls_and_keywords_are_masked():
    assert (
        redact_text("postgresql://app:s3cret@127.0.0.1:5432/db")
        == "postgresql://app:***@127.0.0.1:5432/db"
    )
    assert redact_text("redis://:hunter2@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert (
        redact_text("host=127.0.0.1 password=s3cret user=app")
        == "host=127.0.0.1 password=*** user=app"
    )
    assert redact_text("http://127.0.0.1:8080/path") == "http://127.0.0.1:8080/path"


def test_secret_looking_keys_are_masked_through_nesting():
    data = {
        "env": {"API_TOKEN": "abc", "DATABASE_URL": "postgresql://u:pw@h/db"},
        "list": ["x://a:b@h"],
    }
    assert redact(data) == {
        "env": {"API_TOKEN": "***", "DATABASE_URL": "postgresql://u:***@h/db"},
        "list": ["x://a:***@h"],
    }


def test_the_saved_manifest_holds_no_password(tmp_path):
    manifest = RunManifest(
        run=RunInfo(
            id="r",
            pipeline="p.yaml",
            pipeline_sha256="0",
            seed=1,
            started_at="now",
            heisen_version="0",
        ),
        pipeline={
            "dependencies": {
                "postgres": {"kind": "postgres", "dsn": "postgresql://app:s3cret@127.0.0.1/db"}
            }
        },
    )
    manifest.phase("stress").outputs = {"note": "connected to redis://:hunter2@127.0.0.1:6379"}
    text = manifest.save(tmp_path).read_text()
    assert "s3cret" not in text and "hunter2" not in text
    assert RunManifest.load(tmp_path).run.id == "r"


# ----------------------------------------------------------------- the rules, one by one


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASS",
        "PGPASSWORD",
        "dbPassword",
        "client_secret",
        "API_TOKEN",
        "X-Refresh-Token",
        "PRIVATE_KEY",
        "X-Auth-Key",
        "X-Api-Key",
        "apikey",
        "AWS_CREDENTIALS",
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "--password",
        "ROOTPASS",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["key", "keys", "unknown_keys", "passed", "MODE", "path", "f"])
def test_schema_names_that_are_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


def test_env_and_header_names_are_read_strictly() -> None:
    assert not is_secret_name("KEY") and is_secret_name("KEY", strict=True)
    assert is_secret_name("SESSION_ID", strict=True) and is_secret_name("X-Signature", strict=True)
    data = {
        "history": {"f": "write", "key": "concert-price", "value": "request.body.price"},
        "env": {"KEY": "k1", "MODE": "buggy", "DB_PASS": "p@ss:w0rd@x"},
        "headers": {"X-Session": "s1", "Accept": "application/json"},
        "outputs": {"passed": 3, "hotspots": [{"key": "user:1"}]},
        "secrets": {"nested": ["a", {"deep": 1}], "flag": True},
    }
    assert redact(data) == {
        "history": {"f": "write", "key": "concert-price", "value": "request.body.price"},
        "env": {"KEY": MASK, "MODE": "buggy", "DB_PASS": MASK},
        "headers": {"X-Session": MASK, "Accept": "application/json"},
        "outputs": {"passed": 3, "hotspots": [{"key": "user:1"}]},
        "secrets": {"nested": [MASK, {"deep": MASK}], "flag": True},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # URLs: raw @ and : in the password, percent-encoded ones, Redis with no user
        (
            "postgresql://app:S3cr@t:Pw1@127.0.0.1:5432/db",
            "postgresql://app:***@127.0.0.1:5432/db",
        ),
        (
            "postgresql://app:S3cr%40t%3APw1@127.0.0.1/db?sslmode=disable",
            "postgresql://app:***@127.0.0.1/db?sslmode=disable",
        ),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://app@127.0.0.1/db", "postgresql://app@127.0.0.1/db"),
        # key/value DSNs: spaces around =, quotes, escapes
        (
            "host=127.0.0.1 password = 'two words' user=app",
            "host=127.0.0.1 password = '***' user=app",
        ),
        ("password='it\\'s' dbname=x", "password='***' dbname=x"),
        ("password=plain dbname=x", "password=*** dbname=x"),
        # query parameters
        (
            "http://h/p?access_token=t1&page=2&api_key=t2&sig=t3&key=t4&X-Amz-Credential=t5",
            "http://h/p?access_token=***&page=2&api_key=***&sig=***&key=***&X-Amz-Credential=***",
        ),
        ("/n?token=abc#frag", "/n?token=***#frag"),
        # header lines, JSON and Python reprs
        ("Authorization: Bearer abc.def\nnext", "Authorization: ***\nnext"),
        ("-H 'Cookie: a=1; b=2' -H 'X-Auth-Key: k'", "-H 'Cookie: ***' -H 'X-Auth-Key: ***'"),
        ('{"api_key": "v", "passed": 3}', '{"api_key": "***", "passed": 3}'),
        ("{'Set-Cookie': 'id=1'}", "{'Set-Cookie': '***'}"),
        # command lines: long options with = or a separate value; short options kept
        (
            "svc --password=p1 --api-key k1 --token 'a b' -p 5432 --port 80",
            "svc --password=*** --api-key *** --token '***' -p 5432 --port 80",
        ),
        ("DB_PASS=p1 PRIVATE_KEY=k1 MODE=buggy", "DB_PASS=*** PRIVATE_KEY=*** MODE=buggy"),
        ("sent Bearer abcdefgh12345 upstream", "sent Bearer *** upstream"),
        # what is not a secret stays
        (
            "stale read on key=user:1 at 12:30; passed: 3; http://127.0.0.1:8080/p?page=2",
            "stale read on key=user:1 at 12:30; passed: 3; http://127.0.0.1:8080/p?page=2",
        ),
    ],
)
def test_secrets_in_text_are_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # masking twice changes nothing


def test_command_lines_mask_the_value_after_a_secret_option() -> None:
    argv = ["svc.py", "--api-key", "k1", "--password=p1", "-p", "5432", "--verbose", "x"]
    assert redact_argv(argv) == [
        "svc.py",
        "--api-key",
        MASK,
        "--password=***",
        "-p",
        "5432",
        "--verbose",
        "x",
    ]
    assert redact({"pair": ["Authorization", "Bearer t"]}) == {"pair": ["Authorization", MASK]}


def test_log_lines_and_json_output_are_redacted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from heisen.console import make_console, write_json

    monkeypatch.setenv("COLUMNS", "30")  # a line break must not split a secret out of its form
    make_console(stderr=False, plain=True).print(
        "cannot reach postgresql://application:longlonglongpassword9@127.0.0.1:5432/db"
    )
    assert "longlonglongpassword9" not in capsys.readouterr().out

    record = logging.LogRecord(
        "heisen", logging.INFO, __file__, 1, "GET %s", ("/x?access_token=t9",), None
    )
    assert RedactingFormatter("%(message)s").format(record) == "GET /x?access_token=***"
    write_json({"env": {"DB_PASS": "p9"}, "dsn": "postgresql://u:p9@h/db"})
    make_console(stderr=True, plain=True).print("error: password = 'p9 p9' refused")
    captured = capsys.readouterr()
    assert "p9" not in captured.out + captured.err
    assert json.loads(captured.out)["env"]["DB_PASS"] == MASK
    assert "password = '***'" in captured.err


# ----------------------------------------------------------------- a real run, seeded with secrets

SERVICE = """
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import psycopg

DSN = os.environ["DATABASE_URL"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            return self._reply({"ok": True})
        with psycopg.connect(DSN, autocommit=True) as connection:
            n = connection.execute("SELECT count(*) FROM secret_hits").fetchone()[0]
        self._reply({"n": n})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with psycopg.connect(DSN, autocommit=True) as connection:
            connection.execute("INSERT INTO secret_hits DEFAULT VALUES")
        self._reply({"ok": True})


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

# Every secret, where the pipeline puts it; each must appear nowhere heisen writes.
SECRETS = {
    "url_password": "S3cr@t:Pw1",  # raw @ and : (percent-encoded in the DSN)
    "url_password_encoded": "S3cr%40t%3APw1",
    "kv_password": "kv secret2",  # key/value DSN, quoted, with a space
    "dependency_query": "QTOKEN3",
    "arg_equals": "ARGPW4",
    "arg_separate": "ARGKEY5",
    "env_pass": "ENVPASS6",
    "env_private_key": "ENVKEY7",
    "env_token": "ENVTOK8",
    "env_url_raw_at": "R@wPw9:x",
    "path_query": "PATHTOK9",
    "authorization": "AUTHZ10",
    "cookie": "COOKIE11",
    "x_auth_key": "XAUTH12",
    "probe_query": "INVTOK13",
    "probe_authorization": "INVAUTH14",
}

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: seeded-secrets
seed: 7
dependencies:
  pg:
    kind: postgres
    dsn: "postgresql://postgres:S3cr%40t%3APw1@127.0.0.1:{port}/postgres"
  pgkv:
    kind: postgres
    dsn: "host=127.0.0.1 port={port} user=postgres password = 'kv secret2' dbname=postgres"
  api:
    kind: http
    url: "http://127.0.0.1:9/v1?access_token=QTOKEN3&page=1"
services:
  app:
    command: ["{{{{ python }}}}", "service.py", "--password=ARGPW4", "--api-key", "ARGKEY5"]
    env:
      DATABASE_URL: "{{{{ deps.pg.dsn }}}}"
      DB_PASS: ENVPASS6
      PRIVATE_KEY: ENVKEY7
      API_TOKEN: ENVTOK8
      UPSTREAM: "http://bob:R@wPw9:x@127.0.0.1:9/"
    health: {{path: /health, timeout: 20s}}
scenario:
  setup:
    - sql: "CREATE TABLE IF NOT EXISTS secret_hits (id serial); TRUNCATE secret_hits"
      "on": pgkv
  requests:
    hit:
      method: POST
      path: /hit?access_token=PATHTOK9
      headers:
        Authorization: "Bearer AUTHZ10"
        Cookie: "session=COOKIE11"
        X-Auth-Key: "XAUTH12"
      json: {{by: 1}}
  load:
    - burst: {{requests: 6}}
invariants:
  - name: rows-seen-over-sql
    "on": pgkv
    sql: "SELECT count(*) AS n FROM secret_hits"
    expect: n >= 0
  - name: never-holds
    http: {{method: GET, path: "/n?token=INVTOK13", headers: {{Authorization: "Basic INVAUTH14"}}}}
    expect: body.n < 0
phases:
  stress:
    trials: 1
"""


def _heisen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "heisen", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_a_run_seeded_with_secrets_writes_and_prints_none_of_them(
    tmp_path: Path, embedded_postgres: object
) -> None:
    port = embedded_postgres.port  # type: ignore[attr-defined]
    (tmp_path / "service.py").write_text(SERVICE)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.format(port=port))
    run_dir = tmp_path / "run"
    run = _heisen("run", "pipeline.yaml", "--run-dir", str(run_dir), "--json", cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # never-holds is violated: findings, replay, reports
    summary = _heisen("report", str(run_dir), cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    manifest = json.loads(run.stdout)
    assert manifest["phases"]["stress"]["status"] == "failed"
    written = {
        str(path.relative_to(run_dir)): path.read_bytes().decode("utf-8", "replace")
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }
    assert {"manifest.yaml", "report.html", "junit.xml", "summary.md"} <= set(written)
    assert any(name.startswith("logs/") for name in written)
    outputs = {
        "run stdout": run.stdout,
        "run stderr": run.stderr,
        "report stdout": summary.stdout,
        "report stderr": summary.stderr,
    }
    leaks = [
        f"{what} in {where}"
        for where, text in {**written, **outputs}.items()
        for what, secret in SECRETS.items()
        if secret in text
    ]
    assert leaks == []
    # the secrets were there to leak: masked in place, everything around them kept
    pipeline = yaml.safe_load(written["manifest.yaml"])["pipeline"]
    assert pipeline["dependencies"]["pg"]["dsn"] == (
        f"postgresql://postgres:***@127.0.0.1:{port}/postgres"
    )
    assert "password = '***' dbname=postgres" in pipeline["dependencies"]["pgkv"]["dsn"]
    assert pipeline["services"]["app"]["command"][2:] == ["--password=***", "--api-key", MASK]
    assert pipeline["services"]["app"]["env"]["UPSTREAM"] == "http://bob:***@127.0.0.1:9/"
    assert pipeline["scenario"]["requests"]["hit"]["headers"] == {
        "Authorization": MASK,
        "Cookie": MASK,
        "X-Auth-Key": MASK,
    }
    assert "rows-seen-over-sql" in written["junit.xml"]


def test_a_verdict_named_pass_is_not_a_secret():
    summary = "verdict Pass: 6 fault(s) injected, steady state Pass/Pass/Pass, 0 lost"
    assert redact_text(summary) == summary
    assert redact_text("pass=hunter2") == "pass=***"


@pytest.mark.parametrize("unit", ["a", "a-", "a:", "?a=", "a.", "x/", "password=s "])
def test_redacting_a_long_line_takes_time_in_proportion_to_it(unit):
    import time

    text = unit * (100_000 // len(unit))
    began = time.process_time()
    redacted = redact_text(text)
    assert time.process_time() - began < 1.0
    if unit.startswith("password"):
        assert "=s " not in redacted and "password=***" in redacted
    else:
        assert redacted == text
