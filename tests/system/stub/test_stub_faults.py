"""Each WireMock fault as real clients see it: httpx, aiohttp and a raw socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aiohttp
import httpx
import pytest
from test_stub_support import ThreadedStub

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def stub() -> Iterator[ThreadedStub]:
    with ThreadedStub() as stub:
        yield stub


def _raw(stub: ThreadedStub, path: str) -> tuple[bytes, BaseException | None]:
    data = b""
    with socket.create_connection((stub.server.host, stub.server.port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: stub\r\n\r\n".encode())
        try:
            for _ in range(100):
                chunk = sock.recv(65536)
                if not chunk:
                    return data, None
                data += chunk
        except OSError as error:
            return data, error
    return data, None


def test_empty_response_closes_without_a_byte(stub: ThreadedStub) -> None:
    assert _raw(stub, "/fault/empty") == (b"", None)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        httpx.get(stub.url + "/fault/empty")


def test_malformed_chunk_after_a_200_head(stub: ThreadedStub) -> None:
    data, error = _raw(stub, "/fault/malformed")
    assert error is None and data.startswith(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(stub.url + "/fault/malformed")


def test_random_data_then_close(stub: ThreadedStub) -> None:
    data, error = _raw(stub, "/fault/random")
    assert error is None and len(data) == 64 and not data.startswith(b"HTTP/")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(stub.url + "/fault/random")


def test_connection_reset_by_peer_is_an_rst(stub: ThreadedStub) -> None:
    data, error = _raw(stub, "/fault/reset")
    assert data == b"" and isinstance(error, ConnectionResetError)
    with pytest.raises(httpx.ReadError):
        httpx.get(stub.url + "/fault/reset")


def test_aiohttp_sees_each_fault_as_a_client_error(stub: ThreadedStub) -> None:
    async def kinds() -> dict[str, str]:
        seen = {}
        async with aiohttp.ClientSession() as session:
            for name in ("empty", "malformed", "random", "reset"):
                try:
                    async with session.get(f"{stub.url}/fault/{name}") as response:
                        await response.read()
                    seen[name] = "no error"
                except aiohttp.ClientError as error:
                    seen[name] = type(error).__name__
        return seen

    seen = asyncio.run(kinds())
    assert seen["empty"] == "ServerDisconnectedError"
    assert seen["malformed"] in ("ClientPayloadError", "ClientResponseError")  # parser-dependent
    assert seen["random"] == "ClientResponseError"  # not an HTTP status line
    assert seen["reset"] == "ClientOSError"  # ECONNRESET
    assert "no error" not in seen.values()
