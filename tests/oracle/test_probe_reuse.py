"""sql and redis probes reuse one connection inside `reusing_connections()`, and only there."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from heisen.oracle import ProbeError, redis_probe, sql_probe
from heisen.oracle.probes import reusing_connections
from support import wait_until

PID = "SELECT pg_backend_pid() AS pid"


def _backend_alive(dsn: str, pid: int) -> bool:
    query = f"SELECT count(*) AS n FROM pg_stat_activity WHERE pid = {int(pid)}"
    return bool(sql_probe(dsn, query)["n"])


def test_sql_probes_share_one_connection_in_the_block_and_it_is_closed_after(
    embedded_postgres: Any,
) -> None:
    dsn = embedded_postgres.dsn
    apart = {sql_probe(dsn, PID)["pid"] for _ in range(3)}
    assert len(apart) > 1, "outside the block every call connects anew"
    with reusing_connections():
        inside = {sql_probe(dsn, PID)["pid"] for _ in range(5)}
        assert len(inside) == 1
        (pid,) = inside
        assert _backend_alive(dsn, pid)
    wait_until(lambda: not _backend_alive(dsn, pid), what="the block closed its connection")


def test_a_kept_sql_connection_that_was_cut_is_replaced_and_a_wrong_query_keeps_it(
    embedded_postgres: Any,
) -> None:
    dsn = embedded_postgres.dsn
    with reusing_connections():
        first = sql_probe(dsn, PID)["pid"]
        with pytest.raises(ProbeError) as raised:
            sql_probe(dsn, "SELECT * FROM no_such_table_here")
        assert raised.value.fault == "pipeline"
        assert sql_probe(dsn, PID)["pid"] == first, "a statement error leaves the connection usable"
        other = dsn + ("&" if "?" in dsn else "?") + "application_name=killer"  # its own key
        sql_probe(other, f"SELECT pg_terminate_backend({int(first)})")
        wait_until(lambda: not _backend_alive(dsn, first), what="the cut connection is gone")
        second = sql_probe(dsn, PID)["pid"]
        assert second != first
        assert sql_probe(dsn, PID)["pid"] == second


def test_a_dead_server_is_still_an_environment_error_in_the_block() -> None:
    with reusing_connections(), pytest.raises(ProbeError) as raised:
        sql_probe("postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2", "SELECT 1")
    assert raised.value.fault == "environment"


def test_another_thread_does_not_share_the_block(embedded_postgres: Any) -> None:
    dsn = embedded_postgres.dsn
    seen: list[int] = []
    with reusing_connections():
        sql_probe(dsn, PID)
        thread = threading.Thread(
            target=lambda: seen.extend(sql_probe(dsn, PID)["pid"] for _ in range(3))
        )
        thread.start()
        thread.join(timeout=30)
    assert len(set(seen)) > 1


def test_redis_probes_share_one_client_in_the_block_and_it_is_closed_after(
    embedded_redis: Any,
) -> None:
    url = embedded_redis.url
    apart = {redis_probe(url, ["CLIENT", "ID"])["value"] for _ in range(3)}
    assert len(apart) == 3
    with reusing_connections():
        inside = {redis_probe(url, ["CLIENT", "ID"])["value"] for _ in range(5)}
        assert len(inside) == 1
    (client_id,) = inside

    def gone() -> bool:
        listing = str(redis_probe(url, ["CLIENT", "LIST"])["value"])
        return f"id={client_id} " not in listing

    wait_until(gone, what="the block closed its client")
