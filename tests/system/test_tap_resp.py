"""The Redis tap: real redis-py traffic through a tapped TcpProxy, and the decoder on its own.

The proxy and the redis.asyncio clients share one event loop (`asyncio.run`),
in front of the session's embedded Redis; what the tap decoded is read back
with `proxy.operations()`. The decoder tests feed one recorded RESP3
conversation whole, split at every byte, and one byte per chunk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from heisen.system import EmbeddedRedis
from heisen.system._tap._resp import RespDecoder
from heisen.system._tcpproxy import Address, TcpProxy
from heisen.system_protocol import DependencyOperation

pytestmark = pytest.mark.timeout(60)

Scenario = Callable[[str], Awaitable[None]]


def tapped(server: EmbeddedRedis, scenario: Scenario) -> list[DependencyOperation]:
    """Run `scenario(url)` against a Redis tap in front of `server`; what the tap decoded,
    without the CLIENT subcommands redis-py sends on each new connection."""

    async def main() -> list[DependencyOperation]:
        upstream = Address(server.host, server.port)
        proxy = TcpProxy("cache", Address("127.0.0.1", 0), [upstream])
        proxy.set_tap("redis")
        await proxy.start()
        try:
            await scenario(f"redis://127.0.0.1:{proxy.listen.port}/0")
        finally:
            await proxy.stop()
        assert proxy.tap_lost == {}
        return proxy.operations()[1]

    operations = asyncio.run(main())
    assert all(op.link == "cache" and op.protocol == "redis" for op in operations)
    assert all(op.end is not None and op.start <= op.end for op in operations)
    handshake = {"CLIENT SETINFO", "CLIENT MAINT_NOTIFICATIONS"}
    return [op for op in operations if op.command not in handshake]


def unique(name: str) -> str:
    return f"{name}:{uuid.uuid4().hex[:8]}"


# --- real traffic ------------------------------------------------------------------


def test_plain_commands_scripts_and_an_error(embedded_redis: EmbeddedRedis) -> None:
    stock, lock, name = unique("stock"), unique("lock"), unique("name")
    token = "3f2a9c1e-0000-4000-8000-00000000cafe"
    incr = "return redis.call('INCR', KEYS[1])"

    async def scenario(url: str) -> None:
        client = redis.asyncio.Redis.from_url(url, protocol=2)
        try:
            await client.set(stock, 10)
            assert await client.get(stock) == b"10"
            assert await client.set(lock, token, nx=True, px=2000)
            assert await client.incr(stock) == 11
            await client.set(name, "alice")
            with pytest.raises(redis.ResponseError):
                await client.incr(name)
            assert await client.eval("return redis.call('GET', KEYS[1])", 1, stock) == b"11"
            sha = await client.script_load(incr)
            assert await client.evalsha(sha, 1, stock) == 12
        finally:
            await client.aclose()

    ops = tapped(embedded_redis, scenario)
    assert [op.command for op in ops] == [
        *("SET", "GET", "SET", "INCRBY", "SET", "INCRBY", "EVAL", "SCRIPT LOAD", "EVALSHA"),
    ]
    assert len({op.connection for op in ops}) == 1
    assert [op.start for op in ops] == sorted(op.start for op in ops)
    set_stock, get, set_lock, incr_op, _, failed, eval_op, load, evalsha = ops
    assert (set_stock.keys, set_stock.access, set_stock.detail) == (
        (stock,),
        "write",
        {"reply": "OK"},
    )
    assert (get.keys, get.access, get.detail) == ((stock,), "read", {"reply": "10", "value": 10})
    assert set_lock.access == "rmw"
    assert set_lock.detail == {"reply": "OK", "nx": True, "ttl_ms": 2000}
    assert set_lock.text == f"SET {lock} 3f2a… NX PX 2000"
    assert (incr_op.access, incr_op.detail) == ("rmw", {"reply": 11, "value": 11})
    assert failed.error == "ERR value is not an integer or out of range"
    assert (eval_op.keys, eval_op.access) == ((stock,), "rmw")
    assert eval_op.detail["script"] == "return redis.call('GET', KEYS[1])"
    assert (load.access, load.keys) == ("none", ())
    assert evalsha.keys == (stock,)
    assert evalsha.detail["script"] == incr
    assert evalsha.detail["sha1"] == hashlib.sha1(incr.encode()).hexdigest()
    assert all(op.error is None for op in ops if op is not failed)


def test_a_pipeline_yields_one_operation_per_command_in_order(
    embedded_redis: EmbeddedRedis,
) -> None:
    counter, seen = unique("counter"), unique("seen")

    async def scenario(url: str) -> None:
        client = redis.asyncio.Redis.from_url(url, protocol=2)
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(counter, 1)
                pipe.incrby(counter, 5)
                pipe.get(counter)
                pipe.sadd(seen, "a", "b")
                pipe.mget(counter, seen)
                pipe.delete(counter, seen)
                assert await pipe.execute() == [True, 6, b"6", 2, [b"6", None], 2]
        finally:
            await client.aclose()

    ops = tapped(embedded_redis, scenario)
    assert [(op.command, op.keys, op.access) for op in ops] == [
        ("SET", (counter,), "write"),
        ("INCRBY", (counter,), "rmw"),
        ("GET", (counter,), "read"),
        ("SADD", (seen,), "write"),
        ("MGET", (counter, seen), "read"),
        ("DEL", (counter, seen), "write"),
    ]
    assert [op.detail["reply"] for op in ops] == ["OK", 6, "6", 2, "array(2)", 2]
    assert [op.end for op in ops] == sorted(op.end or 0.0 for op in ops)


def test_watch_multi_exec_and_an_exec_aborted_by_a_concurrent_write(
    embedded_redis: EmbeddedRedis,
) -> None:
    stock = unique("stock")

    async def decrement(client: Any, other: Any | None) -> None:
        async with client.pipeline() as pipe:
            await pipe.watch(stock)
            left = int(await pipe.get(stock))
            if other is not None:
                await other.set(stock, 100)
            pipe.multi()
            pipe.set(stock, left - 1)
            await pipe.execute()

    async def scenario(url: str) -> None:
        client = redis.asyncio.Redis.from_url(url, protocol=2)
        other = redis.asyncio.Redis.from_url(url, protocol=2)
        try:
            await client.set(stock, 5)
            await decrement(client, None)
            with pytest.raises(redis.WatchError):
                await decrement(client, other)
            assert await client.get(stock) == b"100"
        finally:
            await client.aclose()
            await other.aclose()

    ops = [op for op in tapped(embedded_redis, scenario) if op.command != "UNWATCH"]
    assert [op.command for op in ops] == [
        *("SET", "WATCH", "GET", "MULTI", "SET", "EXEC"),
        *("WATCH", "GET", "SET", "MULTI", "SET", "EXEC", "GET"),
    ]
    first = ops[1:6]
    watch, get, multi, queued, exec_op = first
    assert (watch.keys, watch.access, watch.detail) == ((stock,), "none", {"reply": "OK"})
    assert get.detail == {"reply": "5", "value": 5, "watched": [stock]}
    assert multi.detail == {"reply": "OK", "watched": [stock]}
    assert queued.detail == {"reply": "OK", "in_multi": True, "watched": [stock]}
    assert queued.end == exec_op.end
    assert exec_op.detail == {"reply": "array(1)", "watched": [stock]}
    assert exec_op.error is None

    _, _, concurrent, _, aborted, aborted_exec, _ = ops[6:]
    assert concurrent.connection != aborted.connection
    assert "watched" not in concurrent.detail
    assert aborted.detail["in_multi"] is True
    assert aborted.error == aborted_exec.error == "EXEC aborted: a watched key changed"
    assert aborted_exec.detail["reply"] == "nil"
    assert concurrent.end is not None and aborted_exec.start >= concurrent.end


def test_a_resp3_connection(embedded_redis: EmbeddedRedis) -> None:
    order, rank, seat = unique("order"), unique("rank"), unique("seat")

    async def scenario(url: str) -> None:
        client = redis.asyncio.Redis.from_url(url, protocol=3)
        try:
            await client.hset(order, mapping={"status": "paid", "seats": "2"})
            assert await client.hgetall(order) == {b"status": b"paid", b"seats": b"2"}
            await client.zadd(rank, {"alice": 1.5})
            assert await client.zscore(rank, "alice") == 1.5
            assert await client.set(seat, "A1", xx=True, ex=10) is None
            with pytest.raises(redis.ResponseError):
                await client.smembers(rank)
        finally:
            await client.aclose()

    ops = tapped(embedded_redis, scenario)
    assert [op.command for op in ops] == [
        *("HELLO", "HSET", "HGETALL", "ZADD", "ZSCORE", "SET", "SMEMBERS"),
    ]
    hello, hset, hgetall, zadd, zscore, set_xx, wrong_type = ops
    assert hello.detail["reply"].startswith("map(")
    assert (hset.access, hset.detail) == ("write", {"reply": 2})
    assert (hgetall.keys, hgetall.detail) == ((order,), {"reply": "map(2)"})
    assert (zadd.access, zscore.access, zscore.detail) == ("write", "read", {"reply": "1.5"})
    assert set_xx.access == "rmw"
    assert set_xx.detail == {"reply": "nil", "xx": True, "ttl_ms": 10000}
    assert wrong_type.error is not None and wrong_type.error.startswith("WRONGTYPE")


# --- the decoder alone -----------------------------------------------------------


def array(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def blob(kind: bytes, payload: bytes) -> bytes:
    return kind + b"%d\r\n%s\r\n" % (len(payload), payload)


NO_SCRIPT = b"0" * 40
# (what the client sent, what the server answered), in order
CONVERSATION = [
    (array(b"HELLO", b"3"), b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n"),
    (array(b"SET", b"lock:event:concert", b"3f2a" * 9, b"NX", b"PX", b"2000"), b"+OK\r\n"),
    (array(b"GET", b"stock"), b"|1\r\n+ttl\r\n:3\r\n$2\r\n12\r\n"),
    (b"PING\r\n", b">2\r\n$10\r\ninvalidate\r\n*1\r\n$5\r\nstock\r\n+PONG\r\n"),
    (array(b"WATCH", b"stock"), b"+OK\r\n"),
    (array(b"MULTI"), b"+OK\r\n"),
    (array(b"DECRBY", b"stock", b"2"), b"+QUEUED\r\n"),
    (array(b"HGETALL", b"order:1"), b"+QUEUED\r\n"),
    (array(b"EXEC"), b"*2\r\n:10\r\n%1\r\n$6\r\nstatus\r\n$4\r\npaid\r\n"),
    (array(b"ZSCORE", b"rank", b"alice"), b",1.5\r\n"),
    (array(b"SMEMBERS", b"seats"), b"~2\r\n$2\r\nA1\r\n*0\r\n"),
    (array(b"GET", b"missing"), b"_\r\n"),
    (array(b"INCR", b"name"), b"-ERR value is not an integer or out of range\r\n"),
    (array(b"EVAL", b"return true", b"1", b"stock"), b"#t\r\n"),
    (array(b"EVALSHA", NO_SCRIPT, b"0"), blob(b"!", b"NOSCRIPT No matching script")),
    (array(b"CLIENT", b"INFO"), blob(b"=", b"txt:id=7 name=x")),
    (array(b"DBSIZE"), b"(12345678901234567890\r\n"),
    (array(b"MSET", b"a", b"1", b"b", b"2"), b"+OK\r\n"),
]
WATCHED = {"watched": ["stock"]}
# command, keys, access, error, detail, the exchange whose reply completes it
EXPECTED: list[tuple[str, tuple[str, ...], str, str | None, dict[str, Any], int]] = [
    ("HELLO", (), "none", None, {"reply": "map(2)"}, 0),
    ("SET", ("lock:event:concert",), "rmw", None, {"reply": "OK", "nx": True, "ttl_ms": 2000}, 1),
    ("GET", ("stock",), "read", None, {"reply": "12", "value": 12}, 2),
    ("PING", (), "none", None, {"reply": "PONG"}, 3),
    ("WATCH", ("stock",), "none", None, {"reply": "OK"}, 4),
    ("MULTI", (), "none", None, {"reply": "OK", **WATCHED}, 5),
    ("DECRBY", ("stock",), "rmw", None, {"reply": 10, "value": 10, "in_multi": True, **WATCHED}, 8),
    ("HGETALL", ("order:1",), "read", None, {"reply": "map(1)", "in_multi": True, **WATCHED}, 8),
    ("EXEC", (), "none", None, {"reply": "array(2)", **WATCHED}, 8),
    ("ZSCORE", ("rank",), "read", None, {"reply": "1.5"}, 9),
    ("SMEMBERS", ("seats",), "read", None, {"reply": "set(2)"}, 10),
    ("GET", ("missing",), "read", None, {"reply": "nil"}, 11),
    ("INCR", ("name",), "rmw", "ERR value is not an integer or out of range", {}, 12),
    ("EVAL", ("stock",), "rmw", None, {"reply": True, "script": "return true"}, 13),
    ("EVALSHA", (), "rmw", "NOSCRIPT No matching script", {"sha1": NO_SCRIPT.decode()}, 14),
    ("CLIENT INFO", (), "none", None, {"reply": "id=7 name=x"}, 15),
    ("DBSIZE", (), "read", None, {"reply": "12345678901234567890"}, 16),
    ("MSET", ("a", "b"), "write", None, {"reply": "OK"}, 17),
]
CLIENT = b"".join(sent for sent, _ in CONVERSATION)
SERVER = b"".join(answer for _, answer in CONVERSATION)


def summary(ops: list[DependencyOperation]) -> list[tuple[Any, ...]]:
    return [(op.command, op.keys, op.access, op.error, op.detail) for op in ops]


def expected_summary() -> list[tuple[Any, ...]]:
    rows = []
    for command, keys, access, error, detail, _ in EXPECTED:
        if error is not None:
            detail = {"reply": error, **detail}
        rows.append((command, keys, access, error, detail))
    return rows


def decode(client_chunks: list[bytes], server_chunks: list[bytes]) -> RespDecoder:
    decoder = RespDecoder("cache", 3)
    for chunk in client_chunks:
        decoder.from_client(chunk, 1.0)
    for chunk in server_chunks:
        decoder.from_server(chunk, 2.0)
    return decoder


def test_a_recorded_conversation_decodes_whole() -> None:
    decoder = decode([CLIENT], [SERVER])
    ops = decoder.take()
    assert decoder.lost is None
    assert summary(ops) == expected_summary()
    assert ops[1].text == "SET lock:event:concert 3f2a… NX PX 2000"
    assert ops[13].text == 'EVAL "return true" 1 stock'
    assert {(op.link, op.connection, op.protocol) for op in ops} == {("cache", 3, "redis")}
    assert decoder.take() == []


def test_the_conversation_split_at_every_byte_decodes_the_same() -> None:
    whole = decode([CLIENT], [SERVER]).take()
    for cut in range(1, len(CLIENT)):
        assert decode([CLIENT[:cut], CLIENT[cut:]], [SERVER]).take() == whole, cut
    for cut in range(1, len(SERVER)):
        assert decode([CLIENT], [SERVER[:cut], SERVER[cut:]]).take() == whole, cut


def test_one_byte_per_chunk_dates_each_command_by_its_first_and_last_bytes() -> None:
    """A byte's offset is its chunk's `now`: start is the command's first byte, end the last
    byte of the reply that completes it (EXEC's for queued commands)."""
    decoder = RespDecoder("cache", 3)
    for offset in range(len(CLIENT)):
        decoder.from_client(CLIENT[offset : offset + 1], float(offset))
    assert decoder.take() == []
    for offset in range(len(SERVER)):
        decoder.from_server(SERVER[offset : offset + 1], 10_000.0 + offset)
    ops = decoder.take()
    assert decoder.lost is None
    assert summary(ops) == expected_summary()
    starts, ends, sent, answered = [], [], 0, 0
    for sent_bytes, answer in CONVERSATION:
        starts.append(float(sent))
        ends.append(10_000.0 + answered + len(answer) - 1)
        sent += len(sent_bytes)
        answered += len(answer)
    assert [op.start for op in ops] == starts
    assert [op.end for op in ops] == [ends[row[-1]] for row in EXPECTED]


def test_close_ends_what_waits_unanswered() -> None:
    decoder = decode([array(b"MULTI"), array(b"INCR", b"n"), array(b"BLPOP", b"q", b"0")], [])
    decoder.from_server(b"+OK\r\n+QUEUED\r\n", 2.0)
    decoder.close(3.0)
    ops = decoder.take()
    assert [(op.command, op.keys, op.end) for op in ops] == [
        ("MULTI", (), 2.0),
        ("INCR", ("n",), None),
        ("BLPOP", ("q",), None),
    ]
    assert ops[1].detail == {"in_multi": True}


def test_a_script_loaded_on_one_connection_names_evalsha_on_another() -> None:
    script = b"return redis.call('DECR', KEYS[1]) -- " + uuid.uuid4().hex.encode()
    sha = hashlib.sha1(script).hexdigest().encode()
    loader = decode([array(b"SCRIPT", b"LOAD", script)], [blob(b"$", sha)])
    assert loader.take()[0].command == "SCRIPT LOAD"
    caller = decode([array(b"EVALSHA", sha, b"1", b"stock")], [b":4\r\n"])
    (op,) = caller.take()
    assert (op.keys, op.access, op.detail["script"]) == (("stock",), "rmw", script.decode())


@pytest.mark.parametrize(
    ("command", "reply"),
    [(b"SUBSCRIBE", b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"), (b"MONITOR", b"+OK\r\n")],
)
def test_pubsub_and_monitor_stop_the_tap(command: bytes, reply: bytes) -> None:
    args = [command] if command == b"MONITOR" else [command, b"news"]
    decoder = decode([array(*args), array(b"PING")], [reply])
    assert decoder.lost == ("monitor" if command == b"MONITOR" else "pub/sub")
    ops = decoder.take()
    assert [(op.command, op.end) for op in ops] == [(command.decode(), 2.0), ("PING", None)]
    decoder.from_server(b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n", 3.0)
    assert decoder.take() == []


def test_resp3_subscribe_is_confirmed_by_a_push_and_decoding_goes_on() -> None:
    decoder = decode(
        [array(b"HELLO", b"3"), array(b"SUBSCRIBE", b"news"), array(b"GET", b"k")],
        [b"%0\r\n", b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n", b"$1\r\n7\r\n"],
    )
    assert decoder.lost is None
    assert [(op.command, op.detail.get("reply")) for op in decoder.take()] == [
        ("HELLO", "map(0)"),
        ("SUBSCRIBE", "push(3)"),
        ("GET", "7"),
    ]


@pytest.mark.parametrize(
    ("client", "server", "reason"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"", "TLS"),
        (b"\x00\xff\xfe\x01garbage\r\n", b"", "unparseable client bytes"),
        (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"", "unparseable client bytes"),
        (b"*x\r\n", b"", "unparseable client bytes"),
        (array(b"GET", b"k"), b"?what\r\n", "unparseable reply"),
        (array(b"GET", b"k"), b":12a\r\n", "unparseable reply"),
        (array(b"GET", b"k"), b"+OK\r\n+OK\r\n", "unparseable reply"),
        (array(b"CLIENT", b"REPLY", b"OFF") + array(b"SET", b"k", b"1"), b"", "CLIENT REPLY"),
    ],
)
def test_what_cannot_be_read_stops_the_tap_without_raising(
    client: bytes, server: bytes, reason: str
) -> None:
    decoder = decode([client], [server] if server else [])
    assert decoder.lost is not None and decoder.lost.startswith(reason)
    decoder.from_client(array(b"GET", b"k"), 4.0)
    decoder.from_server(b"$1\r\n1\r\n", 5.0)
    decoder.close(6.0)
    assert all(op.command == "GET" for op in decoder.take())


def test_inline_commands_and_a_discarded_transaction() -> None:
    sent = b"set seat:a1 alice\r\n\r\nMULTI\r\nexpire seat:a1 30 nx\r\nDISCARD\r\nttl seat:a1\r\n"
    answers = b"+OK\r\n+OK\r\n+QUEUED\r\n+OK\r\n:-1\r\n"
    ops = decode([sent], [answers]).take()
    assert [(op.command, op.access, op.error) for op in ops] == [
        ("SET", "write", None),
        ("MULTI", "none", None),
        ("EXPIRE", "rmw", "DISCARD: the transaction was dropped"),
        ("DISCARD", "none", None),
        ("TTL", "read", None),
    ]
    assert ops[0].text == "SET seat:a1 alice"
    assert ops[2].detail == {"reply": "nil", "in_multi": True, "nx": True, "ttl_ms": 30_000}
    assert ops[4].detail == {"reply": -1}


def test_getex_and_pexpire_carry_their_ttl() -> None:
    sent = array(b"GETEX", b"k", b"PX", b"1500") + array(b"PEXPIRE", b"k", b"250", b"XX")
    ops = decode([sent], [b"$1\r\n3\r\n:1\r\n"]).take()
    assert [(op.command, op.access, op.detail) for op in ops] == [
        ("GETEX", "rmw", {"reply": "3", "value": 3, "ttl_ms": 1500}),
        ("PEXPIRE", "rmw", {"reply": 1, "xx": True, "ttl_ms": 250}),
    ]


@settings(max_examples=300, deadline=None)
@given(
    client=st.binary(max_size=200),
    server=st.binary(max_size=200),
    cuts=st.lists(st.integers(min_value=0, max_value=len(CLIENT)), max_size=4),
    noise=st.binary(min_size=1, max_size=8),
)
def test_no_input_makes_the_decoder_raise(
    client: bytes, server: bytes, cuts: list[int], noise: bytes
) -> None:
    """Random bytes, and the recorded conversation with random bytes spliced in."""
    for sent, answered in [(client, server), (spliced(CLIENT, cuts, noise), SERVER)]:
        decoder = RespDecoder("cache", 1)
        decoder.from_client(sent, 1.0)
        decoder.from_server(spliced(answered, cuts, noise), 2.0)
        decoder.close(3.0)
        for op in decoder.take():
            assert op.end is None or op.start <= op.end
            assert json.dumps(op.to_json())


def spliced(data: bytes, cuts: list[int], noise: bytes) -> bytes:
    for cut in sorted(cuts, reverse=True):
        data = data[:cut] + noise + data[cut:]
    return data
