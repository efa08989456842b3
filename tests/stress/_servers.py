"""Loopback servers for the stress tests and benchmarks, run as separate processes.

    python _servers.py raw PORT       minimal asyncio HTTP/1.1 server (see RawServer)
    python _servers.py aiohttp PORT   aiohttp.web with the same routes that matter
    python _servers.py h2 PORT        prior-knowledge h2c server built on h2

Every server records the monotonic time (CLOCK_MONOTONIC, comparable with the
client's) at which each request became complete, and returns the list as
JSON on `GET /_arrivals` (which also clears it).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import time
from urllib.parse import parse_qs, urlsplit

ARRIVALS: list[int] = []


def _query_ms(path: str) -> float:
    values = parse_qs(urlsplit(path).query).get("ms", ["0"])
    return float(values[0]) / 1000.0


class RawServer(asyncio.Protocol):
    """Routes: / (200 ok), /echo (body back), /chunked, /http10 (close-delimited),
    /stall?ms= (async delay), /block?ms= (blocks the whole server), /reset (RST),
    /close (FIN, no response), /garbage (not HTTP), /_arrivals."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
            if path != "/_arrivals":
                ARRIVALS.append(time.monotonic_ns())
            self.handle(method, path, body)

    def respond(self, body: bytes, status: str = "200 OK") -> None:
        head = (
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n"
        )
        self.transport.write(head.encode() + body)

    def handle(self, method: str, path: str, body: bytes) -> None:
        route = urlsplit(path).path
        if route == "/_arrivals":
            self.respond(json.dumps(ARRIVALS).encode())
            ARRIVALS.clear()
        elif route == "/echo":
            self.respond(body)
        elif route == "/chunked":
            parts = [b"hello ", b"chunked ", b"world" * 2000]
            out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            for part in parts:
                out += f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
            out += b"0\r\nX-Trailer: yes\r\n\r\n"
            self.transport.write(out)
        elif route == "/http10":
            self.transport.write(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
            self.transport.close()
        elif route == "/stall":
            asyncio.get_running_loop().call_later(_query_ms(path), self.respond, b"late")
        elif route == "/block":
            time.sleep(_query_ms(path))
            self.respond(b"blocked")
        elif route == "/reset":
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        elif route == "/close":
            self.transport.close()
        elif route == "/garbage":
            self.transport.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        else:
            self.respond(b"ok")


async def serve_raw(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawServer, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def index(request: web.Request) -> web.Response:
        ARRIVALS.append(time.monotonic_ns())
        return web.Response(text="ok")

    async def echo(request: web.Request) -> web.Response:
        ARRIVALS.append(time.monotonic_ns())
        return web.Response(body=await request.read())

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"hello ", b"chunked ", b"world" * 2000):
            await response.write(part)
        await response.write_eof()
        return response

    async def arrivals(request: web.Request) -> web.Response:
        out = json.dumps(ARRIVALS)
        ARRIVALS.clear()
        return web.Response(text=out)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_post("/echo", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/_arrivals", arrivals)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    await asyncio.Event().wait()


class H2Server(asyncio.Protocol):
    """Answers every stream with 200 and `ok <path> <body length>` once the stream has ended."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.paths: dict[int, str] = {}
        self.bodies: dict[int, int] = {}
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        from h2.events import DataReceived, RequestReceived, StreamEnded

        for event in self.conn.receive_data(data):
            if isinstance(event, RequestReceived):
                self.paths[event.stream_id] = dict(event.headers)[":path"]
                self.bodies[event.stream_id] = 0
            elif isinstance(event, DataReceived):
                self.bodies[event.stream_id] += len(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                ARRIVALS.append(time.monotonic_ns())
                sid = event.stream_id
                if self.paths[sid] == "/_arrivals":
                    ARRIVALS.pop()
                    body = json.dumps(ARRIVALS).encode()
                    ARRIVALS.clear()
                else:
                    body = f"ok {self.paths[sid]} {self.bodies[sid]}".encode()
                self.conn.send_headers(
                    sid, [(":status", "200"), ("content-length", str(len(body)))]
                )
                self.conn.send_data(sid, body, end_stream=True)
        self.transport.write(self.conn.data_to_send())


async def serve_h2(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(H2Server, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    kind, port_text = sys.argv[1], sys.argv[2]
    serve = {"raw": serve_raw, "aiohttp": serve_aiohttp, "h2": serve_h2}[kind]
    asyncio.run(serve(int(port_text)))
