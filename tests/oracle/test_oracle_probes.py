from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from heisen.oracle import (
    ProbeError,
    check_python_ref,
    http_probe,
    parse_expression,
    python_probe,
    redis_probe,
    run_setup_redis,
    run_setup_sql,
    sql_probe,
)
from heisen.oracle._python_runner import stop_python_probes
from support import serve_app

# ------------------------------------------------------------------ SQL


def test_sql_probe_gives_first_row_rows_and_rowcount(embedded_postgres: Any) -> None:
    dsn = embedded_postgres.dsn
    run_setup_sql(
        dsn,
        """
        DROP TABLE IF EXISTS oracle_seats;
        CREATE TABLE oracle_seats (id int PRIMARY KEY, sold int, capacity int);
        INSERT INTO oracle_seats VALUES (1, 3, 5), (2, 6, 5);
        """,
    )
    variables = sql_probe(
        dsn, "SELECT sold, capacity, sum(sold) OVER () AS total FROM oracle_seats ORDER BY id"
    )
    assert variables["sold"] == 3 and variables["capacity"] == 5
    assert variables["total"] == 9 and isinstance(variables["total"], int)  # numeric → int
    assert variables["rowcount"] == 2
    assert variables["rows"][1] == {"sold": 6, "capacity": 5, "total": 9}
    expect = parse_expression("sold <= capacity and rowcount == 2")
    assert expect.evaluate(variables) is True
    oversold = sql_probe(dsn, "SELECT count(*) AS oversold FROM oracle_seats WHERE sold > capacity")
    assert parse_expression("oversold == 0").evaluate(oversold) is False
    chosen = sql_probe(dsn, "SELECT id FROM oracle_seats WHERE id = ANY(%(ids)s)", {"ids": [2, 9]})
    assert chosen["rows"] == [{"id": 2}]
    empty = sql_probe(dsn, "SELECT id FROM oracle_seats WHERE id < 0")
    assert empty == {"rows": [], "rowcount": 0}


def test_sql_probe_errors_say_what_and_where(embedded_postgres: Any) -> None:
    with pytest.raises(ProbeError) as caught:
        sql_probe(embedded_postgres.dsn, "SELECT nope FROM missing_table_xyz")
    assert "missing_table_xyz" in str(caught.value) and str(caught.value).startswith(
        "sql probe on "
    )
    with pytest.raises(ProbeError, match="sql setup"):
        run_setup_sql(embedded_postgres.dsn, "CREATE TABLE (")


def test_sql_probe_unreachable_database_redacts_the_password(free_tcp_port: int) -> None:
    dsn = f"postgresql://heisen:s3cret@127.0.0.1:{free_tcp_port}/postgres?connect_timeout=2"
    with pytest.raises(ProbeError) as caught:
        sql_probe(dsn, "SELECT 1")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
    assert caught.value.exit_code == 3


# ------------------------------------------------------------------ Redis


def test_redis_probe_decodes_values(embedded_redis: Any) -> None:
    url = embedded_redis.url
    run_setup_redis(url, ["SET", "oracle:sold", "7"])
    run_setup_redis(url, ["SET", "oracle:name", "gala"])
    run_setup_redis(url, ["DEL", "oracle:list"])
    run_setup_redis(url, ["RPUSH", "oracle:list", "a", "2"])
    assert redis_probe(url, ["GET", "oracle:sold"]) == {"value": 7}
    assert redis_probe(url, ["GET", "oracle:name"]) == {"value": "gala"}
    assert redis_probe(url, ["GET", "oracle:absent"]) == {"value": None}
    assert redis_probe(url, ["LRANGE", "oracle:list", "0", "-1"]) == {"value": ["a", 2]}
    variables = redis_probe(url, ["GET", "oracle:absent"])
    assert parse_expression("value == null or int(value) >= 0").evaluate(variables) is True


def test_redis_probe_errors(embedded_redis: Any, free_tcp_port: int) -> None:
    with pytest.raises(ProbeError, match="NOSUCHCOMMAND"):
        redis_probe(embedded_redis.url, ["NOSUCHCOMMAND"])
    with pytest.raises(ProbeError, match="empty"):
        redis_probe(embedded_redis.url, [])
    with pytest.raises(ProbeError, match=f"127.0.0.1:{free_tcp_port}"):
        redis_probe(f"redis://127.0.0.1:{free_tcp_port}/0", ["PING"])


# ------------------------------------------------------------------ HTTP


class Server:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any, str | None]] = []
        self.url = ""


@pytest.fixture
def http_server() -> Iterator[Server]:
    server = Server()

    async def inventory(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        server.seen.append((request.method, request.path, body, request.headers.get("X-Trace")))
        return web.json_response({"items": [{"qty": 2}], "echo": body}, headers={"X-Node": "a"})

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="pong", status=503)

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/inventory", inventory)
        app.router.add_get("/ping", plain)
        return app

    with serve_app(make_app) as url:
        server.url = url
        yield server


def test_http_probe_json_and_text(http_server: Server) -> None:
    variables = http_probe(
        http_server.url, "post", "inventory", json_body={"qty": 1}, headers={"X-Trace": "t1"}
    )
    assert variables["status"] == 200
    assert variables["headers"]["x-node"] == "a"
    assert parse_expression("status == 200 and body.items[0].qty > 0").evaluate(variables)
    assert http_server.seen == [("POST", "/inventory", {"qty": 1}, "t1")]
    text = http_probe(http_server.url + "/", "GET", "/ping")
    assert text["status"] == 503 and text["body"] == "pong"


def test_http_probe_connection_refused(free_tcp_port: int) -> None:
    with pytest.raises(ProbeError, match=f"GET http://127.0.0.1:{free_tcp_port}/x"):
        http_probe(f"http://127.0.0.1:{free_tcp_port}", "GET", "/x", timeout_s=2)


# ------------------------------------------------------------------ Python


@pytest.fixture
def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "oracle_probe_fns.py").write_text(
        textwrap.dedent(
            """
            import asyncio

            def seats(capacity, run_dir=None):
                return {"sold": capacity - 1, "capacity": capacity}

            def scalar(**context):
                return len(context)

            async def later(capacity):
                await asyncio.sleep(0)
                return capacity * 2

            def needs_more(capacity, secret):
                return 1

            def broken():
                raise RuntimeError("db gone")

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "oracle_probe_fns"


def test_python_probe_passes_only_accepted_kwargs(probe_module: str) -> None:
    context = {"capacity": 10, "run_dir": "/tmp/r", "seed": 1}
    assert python_probe(f"{probe_module}:seats", context) == {"sold": 9, "capacity": 10}
    assert python_probe(f"{probe_module}:scalar", context) == {"value": 3}
    assert python_probe(f"{probe_module}:later", context) == {"value": 20}
    try:
        with pytest.raises(ProbeError, match="broken raised RuntimeError: db gone"):
            python_probe(f"{probe_module}:broken", context)
        with pytest.raises(ProbeError, match="cannot import 'no_such_module_xyz'"):
            python_probe("no_such_module_xyz:f", context)
    finally:
        stop_python_probes()


def test_check_python_ref(probe_module: str) -> None:
    allowed = ["capacity", "run_dir", "seed"]
    assert check_python_ref(f"{probe_module}:seats", allowed) is None
    assert check_python_ref(f"{probe_module}:scalar", allowed) is None
    assert "secret" in (check_python_ref(f"{probe_module}:needs_more", allowed) or "")
    assert "bound by an assignment" in (
        check_python_ref(f"{probe_module}:NOT_CALLABLE", allowed) or ""
    )
    assert "no top-level function 'nope'" in (
        check_python_ref(f"{probe_module}:nope", allowed) or ""
    )
    assert "module:function" in (check_python_ref("just_a_module", allowed) or "")


def test_drivers_are_imported_lazily() -> None:
    code = (
        "import sys, heisen.oracle\n"
        "loaded = [m for m in ('psycopg', 'redis', 'httpx', 'aiohttp') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
