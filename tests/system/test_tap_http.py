"""The HTTP/1.x tap: real aiohttp and httpx traffic through a tapped `TcpProxy`, and the decoder
fed by hand (every byte boundary, pipelining, 100-continue, what it cannot follow, its speed).

The real-traffic tests run the aiohttp server, the proxy and the clients in one `asyncio.run`:
the proxy stamps operations with its loop's clock, so a test brackets them with the same clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import aiohttp
import httpx
import pytest
from aiohttp import web

from heisen.system._tap import decoder_for
from heisen.system._tap._http import HttpDecoder
from heisen.system._tcpproxy import Address, TcpProxy
from heisen.system_protocol import DependencyOperation
from support import wait_until_async

pytestmark = pytest.mark.timeout(60)

EMPTY_SHA1 = hashlib.sha1(b"").hexdigest()


# ------------------------------------------------------------------ real traffic


@dataclass
class Dependency:
    """An aiohttp server behind a tapped proxy; `bodies` holds the request bodies it read."""

    proxy: TcpProxy
    url: str
    bodies: list[bytes] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def operations(self, count: int) -> list[DependencyOperation]:
        """The first `count` operations the tap decoded, once it has decoded them."""
        await wait_until_async(
            lambda: self.proxy.operations()[0] >= count, what=f"{count} operations"
        )
        return self.proxy.operations()[1]

    def now(self) -> float:
        return asyncio.get_running_loop().time()


def _app(dependency_bodies: list[bytes], release: asyncio.Event) -> web.Application:
    async def items(request: web.Request) -> web.Response:
        return web.json_response({"query": dict(request.query)})

    async def charges(request: web.Request) -> web.Response:
        body = await request.read()
        dependency_bodies.append(body)
        return web.json_response({"charged": json.loads(body)}, status=201)

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b"one", b"two", b"three"):
            await response.write(piece)
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    async def delete(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/items", items)
    app.router.add_post("/charges", charges)
    app.router.add_get("/stream", stream)
    app.router.add_delete("/items/{id}", delete)
    app.router.add_get("/hang", hang)
    return app


@asynccontextmanager
async def tapped_dependency() -> AsyncIterator[Dependency]:
    bodies: list[bytes] = []
    release = asyncio.Event()
    runner = web.AppRunner(_app(bodies, release), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    proxy = TcpProxy("payments", Address("127.0.0.1", 0), [Address("127.0.0.1", port)])
    proxy.set_tap("http")
    await proxy.start()
    try:
        yield Dependency(proxy, f"http://127.0.0.1:{proxy.listen.port}", bodies, release)
    finally:
        release.set()
        await proxy.stop()
        await runner.cleanup()


def _one_connection() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))


def test_a_get_with_a_query_is_a_read_of_its_path() -> None:
    async def scenario() -> None:
        async with tapped_dependency() as dep, _one_connection() as session:
            before = dep.now()
            async with session.get(f"{dep.url}/items?color=red&size=2") as response:
                body = await response.read()
                assert response.status == 200
            after = dep.now()
            [op] = await dep.operations(1)
            assert (op.link, op.protocol, op.command, op.keys, op.access) == (
                "payments",
                "http",
                "GET",
                ("/items",),
                "read",
            )
            assert op.text == "GET /items?color=red&size=2"
            assert op.error is None
            assert op.end is not None
            assert before <= op.start <= op.end <= after
            detail = op.detail
            assert (detail["method"], detail["path"], detail["query"], detail["status"]) == (
                "GET",
                "/items",
                "color=red&size=2",
                200,
            )
            assert detail["idempotency_key"] is None
            assert detail["body_sha1"] == EMPTY_SHA1
            assert isinstance(detail["response_bytes"], int)
            assert detail["response_bytes"] > len(body) + len("HTTP/1.1 200 OK\r\n\r\n")
            assert isinstance(detail["request_bytes"], int)
            assert detail["request_bytes"] > len("GET /items?color=red&size=2 HTTP/1.1\r\n\r\n")

    asyncio.run(scenario())


def test_a_post_carries_its_idempotency_key_and_the_hash_of_the_body_the_server_read() -> None:
    async def scenario() -> None:
        async with tapped_dependency() as dep, _one_connection() as session:
            async with session.post(
                f"{dep.url}/charges", json={"amount": 120}, headers={"Idempotency-Key": "k-1"}
            ) as response:
                assert response.status == 201
            async with httpx.AsyncClient() as client:
                response2 = await client.post(
                    f"{dep.url}/charges?dry=1",
                    json={"amount": 7},
                    headers={"X-Idempotency-Key": "k-2"},
                )
                assert response2.status_code == 201
            first, second = await dep.operations(2)
            assert [op.command for op in (first, second)] == ["POST", "POST"]
            assert [op.access for op in (first, second)] == ["write", "write"]
            assert [op.text for op in (first, second)] == ["POST /charges", "POST /charges?dry=1"]
            assert [op.detail["idempotency_key"] for op in (first, second)] == ["k-1", "k-2"]
            assert [op.detail["status"] for op in (first, second)] == [201, 201]
            assert [op.detail["body_sha1"] for op in (first, second)] == [
                hashlib.sha1(body).hexdigest() for body in dep.bodies
            ]
            assert first.connection != second.connection

    asyncio.run(scenario())


def test_keep_alive_requests_on_one_connection_are_each_an_operation_in_order() -> None:
    async def scenario() -> None:
        async with tapped_dependency() as dep, _one_connection() as session:
            for n in range(4):
                async with session.get(f"{dep.url}/items?n={n}") as response:
                    await response.read()
            async with httpx.AsyncClient() as client:
                for n in range(4, 7):
                    (await client.get(f"{dep.url}/items?n={n}")).raise_for_status()
            ops = await dep.operations(7)
            assert [op.detail["query"] for op in ops] == [f"n={n}" for n in range(7)]
            assert dep.proxy.stats_connections == 2
            assert len({op.connection for op in ops[:4]}) == 1
            assert len({op.connection for op in ops[4:]}) == 1
            ends = [op.end for op in ops]
            assert all(end is not None for end in ends)
            assert [op.start for op in ops] == sorted(op.start for op in ops)

    asyncio.run(scenario())


def test_a_chunked_response_ends_with_its_last_chunk() -> None:
    async def scenario() -> None:
        async with tapped_dependency() as dep, _one_connection() as session:
            async with session.get(f"{dep.url}/stream") as response:
                assert response.headers["Transfer-Encoding"] == "chunked"
                assert await response.read() == b"onetwothree"
            async with session.get(f"{dep.url}/items") as response:
                await response.read()
            stream, after = await dep.operations(2)
            assert stream.detail["status"] == 200
            assert stream.end is not None
            assert stream.end - stream.start >= 0.02  # the pieces came 10 ms apart
            assert isinstance(stream.detail["response_bytes"], int)
            assert stream.detail["response_bytes"] > len(
                b"3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n"
            )
            assert (after.command, after.detail["path"], after.connection) == (
                "GET",
                "/items",
                stream.connection,
            )

    asyncio.run(scenario())


def test_a_head_and_a_204_have_no_body_and_the_next_request_still_decodes() -> None:
    async def scenario() -> None:
        async with tapped_dependency() as dep, _one_connection() as session:
            async with session.head(f"{dep.url}/items") as response:
                assert response.status == 200
                assert int(response.headers["Content-Length"]) > 0
            async with session.delete(f"{dep.url}/items/7") as response:
                assert response.status == 204
            async with session.get(f"{dep.url}/items?last=1") as response:
                await response.read()
            head, delete, get = await dep.operations(3)
            assert (head.command, head.access, head.detail["status"]) == ("HEAD", "read", 200)
            assert (delete.command, delete.access, delete.keys) == (
                "DELETE",
                "write",
                ("/items/7",),
            )
            assert delete.detail["status"] == 204
            assert (get.detail["query"], get.detail["status"]) == ("last=1", 200)
            assert head.connection == delete.connection == get.connection

    asyncio.run(scenario())


def test_a_request_the_server_never_answers_ends_with_the_connection() -> None:
    async def scenario() -> None:
        async with tapped_dependency() as dep:
            async with httpx.AsyncClient(timeout=0.3) as client:
                with pytest.raises(httpx.ReadTimeout):
                    await client.get(f"{dep.url}/hang?wait=1")
            gave_up = dep.now()
            [op] = await dep.operations(1)
            assert op.end is None
            assert op.error == "no response: the connection closed"
            assert op.detail["status"] is None
            assert op.text == "GET /hang?wait=1"
            assert op.start <= gave_up - 0.25

    asyncio.run(scenario())


def test_a_retried_post_has_the_same_body_sha1() -> None:
    body = json.dumps({"amount": 500, "currency": "eur"}).encode()
    other = json.dumps({"amount": 501, "currency": "eur"}).encode()

    async def scenario() -> None:
        async with tapped_dependency() as dep:
            async with httpx.AsyncClient() as client:
                for content in (body, body, other):
                    response = await client.post(
                        f"{dep.url}/charges",
                        content=content,
                        headers={"Idempotency-Key": "order-9", "Content-Type": "application/json"},
                    )
                    assert response.status_code == 201
            ops = await dep.operations(3)
            hashes = [op.detail["body_sha1"] for op in ops]
            assert hashes == [hashlib.sha1(b).hexdigest() for b in (body, body, other)]
            assert hashes[0] == hashes[1] != hashes[2]
            assert dep.bodies == [body, body, other]

    asyncio.run(scenario())


# ------------------------------------------------------------------ the decoder by hand

Event = tuple[str, bytes]  # ("c" client or "s" server, bytes)

CONVERSATION: list[Event] = [
    ("c", b"GET /items?color=red HTTP/1.1\r\nHost: api\r\n\r\n"),
    ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    (
        "c",
        b"POST /charges HTTP/1.1\r\nHost: api\r\nIdempotency-Key: k-1\r\n"
        b'Content-Length: 13\r\n\r\n{"amount": 1}',
    ),
    ("s", b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    (
        "c",
        b"PUT /files/a HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    ),
    ("s", b"HTTP/1.1 100 Continue\r\n\r\n"),
    ("c", b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nDigest: x\r\n\r\n"),
    ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("c", b"HEAD /items HTTP/1.1\r\n\r\n"),
    ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n"),
    ("c", b"DELETE /items/3 HTTP/1.1\r\n\r\nGET /cached HTTP/1.1\r\n\r\n"),
    (
        "s",
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
    ),
    ("c", b"GET /old HTTP/1.0\r\n\r\n"),
    ("s", b"HTTP/1.0 200 OK\r\n\r\nuntil the end"),
]


def _feed(events: Iterable[tuple[str, bytes, float]], close_at: float | None = None) -> HttpDecoder:
    decoder = HttpDecoder("api", 3)
    for side, data, now in events:
        (decoder.from_client if side == "c" else decoder.from_server)(data, now)
    if close_at is not None:
        decoder.close(close_at)
    return decoder


def _run(
    events: Iterable[tuple[str, bytes, float]], close_at: float = 99.0
) -> list[DependencyOperation]:
    decoder = _feed(events, close_at)
    assert decoder.lost is None
    return decoder.take()


def _whole(conversation: list[Event]) -> list[tuple[str, bytes, float]]:
    return [(side, data, float(i)) for i, (side, data) in enumerate(conversation)]


def test_a_whole_conversation_decodes_to_one_operation_per_exchange() -> None:
    ops = _run(_whole(CONVERSATION))
    summary = [
        (op.command, op.keys, op.access, op.start, op.end, op.detail["status"], op.error)
        for op in ops
    ]
    assert summary == [
        ("GET", ("/items",), "read", 0.0, 1.0, 200, None),
        ("POST", ("/charges",), "write", 2.0, 3.0, 201, None),
        ("PUT", ("/files/a",), "write", 4.0, 7.0, 200, None),
        ("HEAD", ("/items",), "read", 8.0, 9.0, 200, None),
        ("DELETE", ("/items/3",), "write", 10.0, 11.0, 204, None),
        ("GET", ("/cached",), "read", 10.0, 11.0, 304, None),
        ("GET", ("/old",), "read", 12.0, 99.0, 200, None),
    ]
    post, put = ops[1].detail, ops[2].detail
    assert post["idempotency_key"] == "k-1"
    assert post["body_sha1"] == hashlib.sha1(b'{"amount": 1}').hexdigest()
    assert post["request_bytes"] == len(CONVERSATION[2][1])
    assert post["response_bytes"] == len(CONVERSATION[3][1])
    assert put["body_sha1"] == hashlib.sha1(b"abcdefg").hexdigest()
    assert put["request_bytes"] == len(CONVERSATION[4][1]) + len(CONVERSATION[6][1])
    assert put["response_bytes"] == len(CONVERSATION[5][1]) + len(CONVERSATION[7][1])
    assert ops[0].detail == {
        "method": "GET",
        "path": "/items",
        "query": "color=red",
        "status": 200,
        "request_bytes": len(CONVERSATION[0][1]),
        "response_bytes": len(CONVERSATION[1][1]),
        "idempotency_key": None,
        "body_sha1": EMPTY_SHA1,
    }
    assert ops[0].text == "GET /items?color=red"
    assert all((op.link, op.connection, op.protocol) == ("api", 3, "http") for op in ops)


def test_byte_by_byte_gives_the_same_operations() -> None:
    one_by_one = [
        (side, data[i : i + 1], float(n))
        for n, (side, data) in enumerate(CONVERSATION)
        for i in range(len(data))
    ]
    assert _run(one_by_one) == _run(_whole(CONVERSATION))


def test_a_split_at_every_byte_boundary_gives_the_same_operations() -> None:
    expected = _run(_whole(CONVERSATION))
    for n, (side, data) in enumerate(CONVERSATION):
        for cut in range(1, len(data)):
            events = _whole(CONVERSATION)
            events[n : n + 1] = [(side, data[:cut], float(n)), (side, data[cut:], float(n))]
            assert _run(events) == expected, (n, cut)


def test_start_is_the_chunk_with_the_first_byte_and_end_the_chunk_completing_the_answer() -> None:
    ops = _run(
        [
            ("c", b"GET /a HTTP/1.1\r\n\r\nG", 1.0),
            ("c", b"ET /b HTTP/1.1\r\n\r\n", 2.0),
            ("c", b"GET /c HTTP/1.1\r\n\r\n", 3.0),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab", 4.0),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\na", 5.0),
            ("s", b"bHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab", 6.0),
        ]
    )
    assert [(op.keys, op.start, op.end) for op in ops] == [
        (("/a",), 1.0, 4.0),
        (("/b",), 1.0, 6.0),
        (("/c",), 3.0, 6.0),
    ]


def test_pipelined_requests_are_answered_in_order() -> None:
    requests = b"".join(f"GET /p/{n} HTTP/1.1\r\nHost: api\r\n\r\n".encode() for n in range(5))
    responses = [
        f"HTTP/1.1 {200 + 10 * n} X\r\nContent-Length: {n}\r\n\r\n{'x' * n}".encode()
        for n in range(5)
    ]
    decoder = _feed([("c", requests, 1.0)])
    assert decoder.take() == []
    two_and_a_half = b"".join(responses[:2]) + responses[2][:-1]
    decoder.from_server(two_and_a_half, 2.0)
    first = decoder.take()
    decoder.from_server(responses[2][-1:] + b"".join(responses[3:]), 3.0)
    ops = first + decoder.take()
    assert [op.keys[0] for op in ops] == [f"/p/{n}" for n in range(5)]
    assert [op.detail["status"] for op in ops] == [200, 210, 220, 230, 240]
    assert [op.end for op in ops] == [2.0, 2.0, 3.0, 3.0, 3.0]
    assert decoder.lost is None


def test_100_continue_is_not_the_answer() -> None:
    decoder = _feed(
        [
            ("c", b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 1.0),
            ("s", b"HTTP/1.1 100 Continue\r\n\r\n", 2.0),
        ]
    )
    assert decoder.take() == []
    decoder.from_client(b"abc", 3.0)
    decoder.from_server(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 4.0)
    [op] = decoder.take()
    assert (op.start, op.end, op.detail["status"]) == (1.0, 4.0, 201)
    assert op.detail["body_sha1"] == hashlib.sha1(b"abc").hexdigest()


def test_an_early_answer_waits_for_the_rest_of_the_request_body() -> None:
    decoder = _feed(
        [
            ("c", b"POST /big HTTP/1.1\r\nContent-Length: 6\r\n\r\nabc", 1.0),
            ("s", b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n", 2.0),
        ]
    )
    assert decoder.take() == []
    decoder.from_client(b"def", 3.0)
    [op] = decoder.take()
    assert (op.end, op.detail["status"], op.detail["body_sha1"]) == (
        2.0,
        413,
        hashlib.sha1(b"abcdef").hexdigest(),
    )


def test_close_completes_what_was_left() -> None:
    decoder = _feed(
        [
            ("c", b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc", 1.0),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", 2.0),
        ],
        close_at=5.0,
    )
    cut, unanswered = decoder.take()
    assert (cut.end, cut.error, cut.detail["status"]) == (
        None,
        "the response was cut: the connection closed",
        200,
    )
    assert (unanswered.end, unanswered.error, unanswered.detail["body_sha1"]) == (
        None,
        "no response: the connection closed",
        None,
    )
    decoder.from_client(b"GET /late HTTP/1.1\r\n\r\n", 6.0)
    decoder.close(7.0)
    assert decoder.take() == []


@pytest.mark.parametrize(
    ("client", "server", "reason"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"", "TLS"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"", "HTTP/2"),
        (b"CONNECT db:5432 HTTP/1.1\r\nHost: db\r\n\r\n", b"", "CONNECT"),
        (b"\x00\x00\x00\x08\x04\xd2\x16/", b"", "not HTTP/1"),
        (b"hello there, this is not http\r\n", b"", "not HTTP/1"),
        (b"GET / HTTP/1.1\r\n\r\n", b"SSH-2.0-OpenSSH\r\n", "not HTTP/1"),
        (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 2xx OK\r\n", "not HTTP/1"),
        (b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", b"", "Content-Length"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"", "chunk size"),
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000, b"", "longer than"),
        (b"", b"HTTP/1.1 408 Request Timeout\r\n\r\n", "before a request"),
    ],
)
def test_what_the_tap_cannot_follow_makes_it_lost_without_an_exception(
    client: bytes, server: bytes, reason: str
) -> None:
    decoder = HttpDecoder("api", 1)
    decoder.from_client(client, 1.0)
    decoder.from_server(server, 2.0)
    assert decoder.lost is not None
    assert reason in decoder.lost
    decoder.from_client(b"GET / HTTP/1.1\r\n\r\n", 3.0)
    decoder.close(4.0)
    assert decoder.take() == []


def test_an_upgrade_gives_its_exchange_then_stops() -> None:
    decoder = _feed(
        [
            ("c", b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1.0),
            (
                "s",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
                2.0,
            ),
        ]
    )
    [op] = decoder.take()
    assert (op.command, op.end, op.detail["status"]) == ("GET", 2.0, 101)
    assert decoder.lost is not None
    assert "101" in decoder.lost


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20261201)
    for _ in range(300):
        decoder = HttpDecoder("api", 1)
        prefix = rng.choice(
            [b"", b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n"]
        )
        decoder.from_client(prefix + rng.randbytes(rng.randrange(1, 200)), 1.0)
        decoder.from_server(b"HTTP/1.1 200 OK\r\n" + rng.randbytes(rng.randrange(1, 200)), 2.0)
        decoder.close(3.0)
        decoder.take()


def test_the_factory_gives_an_http_decoder() -> None:
    decoder = decoder_for("http", "api", 4)
    assert isinstance(decoder, HttpDecoder)
    assert (decoder.link, decoder.connection, decoder.lost) == ("api", 4, None)


def test_operations_survive_json() -> None:
    for op in _run(_whole(CONVERSATION)):
        assert DependencyOperation.from_json(json.loads(json.dumps(op.to_json()))) == replace(op)
