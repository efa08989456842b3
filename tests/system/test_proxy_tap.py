"""The proxy daemon's tap over its API, on a real Redis: what it decodes, what it gives up on,
and that turning it off stops it on connections already open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from heisen.errors import UsageError
from heisen.system import EmbeddedRedis
from heisen.system._proxy_client import ProxyControl, start_proxy_daemon


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ProxyControl]:
    process, control = start_proxy_daemon(tmp_path / "proxyd.log", seed=3)
    try:
        yield control
    finally:
        control.close()
        process.stop()


def client_through(control: ProxyControl, server: EmbeddedRedis, tap: str | None) -> redis.Redis:
    host, port = control.create("cache", [f"127.0.0.1:{server.port}"])
    control.set_tap("cache", tap)
    return redis.Redis(host=host, port=port, protocol=2)


def test_a_tapped_link_serves_each_command_it_carried(
    control: ProxyControl, embedded_redis: EmbeddedRedis
) -> None:
    client = client_through(control, embedded_redis, "redis")
    client.set("tap:stock", 3)
    assert client.get("tap:stock") == b"3"
    client.incrby("tap:stock", 2)
    total, operations, lost = control.operations_since("cache", 0)
    mine = [op for op in operations if op.keys == ("tap:stock",)]
    assert [(op.command, op.access) for op in mine] == [
        ("SET", "write"),
        ("GET", "read"),
        ("INCRBY", "rmw"),
    ]
    assert all(op.link == "cache" and op.end is not None and op.start <= op.end for op in mine)
    assert mine[1].detail["value"] == 3 and lost == {}
    later, newer, _ = control.operations_since("cache", total)
    assert (later, newer) == (total, [])
    assert control.proxy("cache")["tap"] == "redis"
    client.close()


def test_a_tap_that_cannot_read_the_protocol_stops_and_the_bytes_still_flow(
    control: ProxyControl, embedded_redis: EmbeddedRedis
) -> None:
    client = client_through(control, embedded_redis, "http")  # RESP is not HTTP
    client.set("tap:misread", 1)
    assert client.get("tap:misread") == b"1"
    _, operations, lost = control.operations_since("cache", 0)
    assert operations == [] and sum(lost.values()) == 1, lost
    client.close()


def test_turning_the_tap_off_stops_it_on_open_connections(
    control: ProxyControl, embedded_redis: EmbeddedRedis
) -> None:
    client = client_through(control, embedded_redis, "redis")
    client.get("tap:off")
    control.set_tap("cache", None)
    client.get("tap:off")
    total, _, _ = control.operations_since("cache", 0)
    assert total >= 1
    client.get("tap:off")
    assert control.operations_since("cache", 0)[0] == total
    client.close()


def test_an_unknown_protocol_is_refused(
    control: ProxyControl, embedded_redis: EmbeddedRedis
) -> None:
    control.create("cache", [f"127.0.0.1:{embedded_redis.port}"])
    with pytest.raises(UsageError, match="no tap for protocol 'mongodb'"):
        control.set_tap("cache", "mongodb")
