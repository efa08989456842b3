"""WireMock's admin API round trip, the capped journal, proxying to a real service, and the loopback rule."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from test_stub_support import ThreadedStub

from heisen.errors import PipelineError
from heisen.system.stub import StubServer, load_mappings
from heisen.system.stub._server import _Connection

pytestmark = pytest.mark.timeout(60)


def test_mapping_crud_round_trip() -> None:
    with ThreadedStub() as stub, httpx.Client(base_url=stub.url, timeout=5) as client:
        assert client.get("/__admin/health").json()["status"] == "healthy"
        loaded = client.get("/__admin/mappings").json()
        assert loaded["meta"]["total"] == len(loaded["mappings"]) == 30
        created = client.post(
            "/__admin/mappings",
            json={
                "request": {"method": "GET", "url": "/new"},
                "response": {"status": 200, "body": "v1"},
            },
        )
        assert created.status_code == 201
        stub_id = created.json()["id"]
        assert client.get("/new").text == "v1"
        assert client.get(f"/__admin/mappings/{stub_id}").json()["response"]["body"] == "v1"
        updated = client.put(
            f"/__admin/mappings/{stub_id}",
            json={
                "request": {"method": "GET", "url": "/new"},
                "response": {"status": 200, "body": "v2"},
            },
        )
        assert updated.status_code == 200 and client.get("/new").text == "v2"
        assert client.delete(f"/__admin/mappings/{stub_id}").status_code == 200
        assert client.get("/new").status_code == 404
        assert client.get(f"/__admin/mappings/{stub_id}").status_code == 404
        bad = client.post(
            "/__admin/mappings", json={"request": {"urlPattern": "(["}, "response": {}}
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["source"]["pointer"] == "/request/urlPattern"
        assert client.delete("/__admin/mappings").status_code == 200
        assert client.get("/hello").status_code == 404
        assert client.post("/__admin/mappings/reset").status_code == 200
        assert client.get("/hello").text == "hello"
        client.post("/__admin/mappings", json={"request": {"url": "/tmp"}, "response": {}})
        assert client.post("/__admin/reset").status_code == 200
        assert client.get("/tmp").status_code == 404 and client.get("/hello").status_code == 200


def test_journal_is_capped_counted_and_cleared() -> None:
    with (
        ThreadedStub(journal_limit=50) as stub,
        httpx.Client(base_url=stub.url, timeout=5) as client,
    ):
        for i in range(120):
            client.get("/hello", params={"n": str(i)} if i % 2 else None)
        journal = client.get("/__admin/requests").json()
        assert journal["meta"]["total"] == 50 and len(journal["requests"]) == 50
        assert journal["requests"][0]["request"]["url"] == "/hello?n=119"  # newest first
        assert journal["requests"][0]["wasMatched"] is False  # url also compares the query
        assert journal["requests"][1]["wasMatched"] is True
        assert (
            client.get("/__admin/requests", params={"limit": 5}).json()["requests"].__len__() == 5
        )
        count = client.post("/__admin/requests/count", json={"method": "GET", "url": "/hello"})
        assert count.json() == {"count": 25}
        pattern = {
            "method": "GET",
            "urlPath": "/hello",
            "queryParameters": {"n": {"matches": "11[0-9]"}},
        }
        assert client.post("/__admin/requests/count", json=pattern).json() == {"count": 5}
        assert client.delete("/__admin/requests").status_code == 200
        assert client.get("/__admin/requests").json()["meta"]["total"] == 0
    assert stub.server.core.journal.total == 120


def test_journal_can_be_disabled() -> None:
    with (
        ThreadedStub(journal_limit=0) as stub,
        httpx.Client(base_url=stub.url, timeout=5) as client,
    ):
        client.get("/hello")
        journal = client.get("/__admin/requests").json()
        assert journal["requests"] == [] and journal["requestJournalDisabled"] is True
        assert client.post("/__admin/requests/count", json={"url": "/hello"}).status_code == 409


def test_proxy_forwards_to_a_real_service_and_adds_the_delay() -> None:
    with ThreadedStub(None) as upstream, ThreadedStub(None) as front:
        with httpx.Client(timeout=5) as client:
            client.post(
                upstream.url + "/__admin/mappings",
                json={
                    "request": {
                        "method": "POST",
                        "urlPath": "/charge",
                        "headers": {"X-Extra": {"equalTo": "1"}},
                    },
                    "response": {
                        "status": 402,
                        "body": "declined",
                        "headers": {"X-Upstream": "yes"},
                    },
                },
            )
            client.post(
                front.url + "/__admin/mappings",
                json={
                    "request": {"method": "ANY", "urlPathPattern": "/.*"},
                    "response": {
                        "proxyBaseUrl": upstream.url,
                        "fixedDelayMilliseconds": 80,
                        "additionalProxyRequestHeaders": {"X-Extra": "1"},
                    },
                },
            )
            started = time.perf_counter()
            response = client.post(front.url + "/charge?id=7", content=b"{}")
            elapsed = time.perf_counter() - started
            assert (response.status_code, response.text) == (402, "declined")
            assert response.headers["X-Upstream"] == "yes" and elapsed >= 0.080
            seen = client.get(upstream.url + "/__admin/requests").json()["requests"]
            assert seen[0]["request"]["url"] == "/charge?id=7"
    with ThreadedStub(None) as lonely, httpx.Client(timeout=5) as client:
        client.post(
            lonely.url + "/__admin/mappings",
            json={"request": {"url": "/x"}, "response": {"proxyBaseUrl": "http://127.0.0.1:9"}},
        )
        assert client.get(lonely.url + "/x").status_code == 502


def test_admin_refuses_a_proxy_mapping_that_leaves_loopback() -> None:
    outside = {"request": {"url": "/x"}, "response": {"proxyBaseUrl": "http://192.0.2.10:80"}}
    tricked = {
        "request": {"url": "/y"},
        "response": {"proxyBaseUrl": "http://127.0.0.1.example.com:80"},
    }
    with ThreadedStub(None) as stub, httpx.Client(base_url=stub.url, timeout=5) as client:
        refused = client.post("/__admin/mappings", json=outside)
        assert refused.status_code == 422
        error = refused.json()["errors"][0]
        assert "'192.0.2.10'" in error["title"] and "allow_hosts" in error["title"]
        assert error["source"]["pointer"] == "/response/proxyBaseUrl"
        refused = client.post("/__admin/mappings", json=tricked)
        assert refused.status_code == 422 and "does not resolve" in refused.text
        kept = client.post(
            "/__admin/mappings",
            json={"request": {"url": "/x"}, "response": {"proxyBaseUrl": "http://localhost:9"}},
        )
        assert kept.status_code == 201
        replaced = client.put(f"/__admin/mappings/{kept.json()['id']}", json=outside)
        assert replaced.status_code == 422
        mappings = client.get("/__admin/mappings").json()["mappings"]
        assert [m["response"]["proxyBaseUrl"] for m in mappings] == ["http://localhost:9"]
    with (
        ThreadedStub(None, allow_hosts=["192.0.2.10"]) as stub,
        httpx.Client(base_url=stub.url, timeout=5) as client,
    ):
        assert client.post("/__admin/mappings", json=outside).status_code == 201


def test_mapping_files_that_proxy_off_loopback_do_not_load(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "pay.json").write_text(
        json.dumps(
            {
                "mappings": [
                    {"request": {"url": "/ok"}, "response": {"proxyBaseUrl": "http://[::1]:9"}},
                    {"request": {"url": "/no"}, "response": {"proxyBaseUrl": "http://10.9.9.9"}},
                ]
            }
        )
    )
    with pytest.raises(PipelineError) as caught:
        load_mappings(tmp_path)
    (problem,) = caught.value.problems
    assert problem.path == "mappings[1].response.proxyBaseUrl" and "'10.9.9.9'" in problem.message
    with pytest.raises(PipelineError):
        StubServer(tmp_path)
    assert len(load_mappings(tmp_path, ["10.9.9.9"])) == 2


def test_admin_answers_loopback_peers_only() -> None:
    """A peer with no loopback address (here a socket pair) gets 403, the stub still serves."""

    async def exchange(server: StubServer, request: bytes) -> bytes:
        ours, theirs = socket.socketpair()
        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(lambda: _Connection(server), theirs)
        reader, writer = await asyncio.open_connection(sock=ours)
        writer.write(request)
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
        return reply

    with ThreadedStub() as stub:
        admin = stub.call(
            exchange(stub.server, b"GET /__admin/mappings HTTP/1.1\r\nConnection: close\r\n\r\n")
        )
        assert admin.startswith(b"HTTP/1.1 403") and b"loopback only" in admin
        served = stub.call(
            exchange(stub.server, b"GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n")
        )
        assert served.startswith(b"HTTP/1.1 200") and served.endswith(b"hello")
        with httpx.Client(base_url=stub.url, timeout=5) as client:
            assert client.get("/__admin/mappings").status_code == 200
