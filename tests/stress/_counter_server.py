"""A correct counter that answers `POST /hit` without reading the body, as a separate process.

    python _counter_server.py aiohttp PORT   aiohttp.web (dispatches on the complete head)
    python _counter_server.py raw PORT       asyncio server speaking HTTP/1.1 and prior-knowledge
                                             h2c on one port; dispatches on the head (HTTP/1.1)
                                             or on the HEADERS frame (HTTP/2), body or not

Routes: GET /health; POST /reset (count = 0); POST /hit (count += 1 behind a
lock, answers {"count": n}); GET /count ({"value": n}); GET /_dispatches (the
CLOCK_MONOTONIC times at which each /hit was dispatched, then cleared).
The raw server's HTTP/1.1 side also has GET /slow?ms= (answers after that
delay) and /early (answers as soon as it has the request line, before the
head is complete, and ignores the rest of the connection: a misbehaving
server, to test how a client records an answer it did not wait for).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
COUNT = [0]
DISPATCHES: list[int] = []
LOCK = threading.Lock()


def route(method: str, path: str) -> tuple[int, bytes]:
    """The counter itself; called the moment a request's head is known."""
    if path == "/hit" and method == "POST":
        DISPATCHES.append(time.monotonic_ns())
        with LOCK:
            COUNT[0] += 1
            return 200, json.dumps({"count": COUNT[0]}).encode()
    if path == "/count":
        with LOCK:
            return 200, json.dumps({"value": COUNT[0]}).encode()
    if path == "/reset" and method == "POST":
        with LOCK:
            COUNT[0] = 0
        return 200, b"{}"
    if path == "/_dispatches":
        out = json.dumps(DISPATCHES).encode()
        DISPATCHES.clear()
        return 200, out
    if path == "/health":
        return 200, b"{}"
    return 404, b"{}"


class RawServer(asyncio.Protocol):
    """HTTP/1.1 or h2c (decided by the first bytes); dispatches before any body byte."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()
        self.skip = 0  # body bytes of the request already answered, still to discard
        self.h2: object | None = None
        self.decided = False
        self.ignore = False

    def data_received(self, data: bytes) -> None:
        if not self.decided:
            self.buf += data
            if len(self.buf) < len(H2_PREFACE) and H2_PREFACE.startswith(bytes(self.buf)):
                return
            self.decided = True
            data, self.buf = bytes(self.buf), bytearray()
            if data.startswith(H2_PREFACE):
                self._start_h2()
        if self.h2 is not None:
            self._h2_received(data)
        else:
            self._h1_received(data)

    # -- HTTP/1.1 ---------------------------------------------------------
    def _h1_received(self, data: bytes) -> None:
        if self.ignore:
            return
        self.buf += data
        if self.buf.startswith(b"POST /early ") and b"\r\n" in self.buf:
            self.ignore = True
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
            return
        while True:
            if self.skip:
                take = min(self.skip, len(self.buf))
                del self.buf[:take]
                self.skip -= take
                if self.skip:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    self.skip = int(value)
            if path.startswith("/slow?ms="):
                delay = float(path.removeprefix("/slow?ms=")) / 1000
                asyncio.get_running_loop().call_later(delay, self._reply, 200, b"{}")
            else:
                self._reply(*route(method, path))

    def _reply(self, status: int, body: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )

    # -- HTTP/2 -----------------------------------------------------------
    def _start_h2(self) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        self.transport.write(conn.data_to_send())
        self.h2 = conn

    def _h2_received(self, data: bytes) -> None:
        from h2.connection import H2Connection
        from h2.events import DataReceived, RequestReceived

        conn = self.h2
        assert isinstance(conn, H2Connection)
        for event in conn.receive_data(data):
            if isinstance(event, RequestReceived):
                headers = dict(event.headers)
                status, body = route(str(headers[":method"]), str(headers[":path"]))
                reply = [(":status", str(status)), ("content-length", str(len(body)))]
                conn.send_headers(event.stream_id, reply)
                conn.send_data(event.stream_id, body, end_stream=True)
            elif isinstance(event, DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.transport.write(conn.data_to_send())


async def serve_raw(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawServer, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    lock = asyncio.Lock()

    async def hit(request: web.Request) -> web.Response:
        DISPATCHES.append(time.monotonic_ns())
        async with lock:  # a real critical section: the read and the write around a yield
            value = COUNT[0]
            await asyncio.sleep(0)
            COUNT[0] = value + 1
            return web.json_response({"count": COUNT[0]})

    async def plain(request: web.Request) -> web.Response:
        status, body = route(request.method, request.path)
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/hit", hit)
    app.router.add_route("*", "/{tail:.*}", plain)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    kind, port_text = sys.argv[1], sys.argv[2]
    serve = {"raw": serve_raw, "aiohttp": serve_aiohttp}[kind]
    asyncio.run(serve(int(port_text)))
