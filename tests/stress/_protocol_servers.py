"""Servers that speak one protocol or another, for the protocol probe's tests (own processes).

    python _protocol_servers.py hypercorn PORT [CERT KEY]   hypercorn: HTTP/1.1 and h2c
                                                             (prior knowledge); with CERT
                                                             and KEY, TLS offering h2 first
    python _protocol_servers.py tls-http1 PORT CERT KEY     aiohttp over TLS, ALPN http/1.1 only
    python _protocol_servers.py silent PORT                 accepts, reads, never answers

Every server answers `GET /` with 200 and the HTTP version the request came in
(`1.1` or `2`), so a test can tell which protocol a request really spoke.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from typing import Any


async def version_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI: 200 with the request's HTTP version as its body."""
    if scope["type"] == "lifespan":
        await receive()  # startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = scope["http_version"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def serve_hypercorn(port: int, cert: str | None, key: str | None) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    if cert and key:
        config.certfile, config.keyfile = cert, key
    await serve(version_app, config)  # type: ignore[arg-type]


async def serve_tls_http1(port: int, cert: str, key: str) -> None:
    from aiohttp import web

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.version.major}.{request.version.minor}")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    await asyncio.Event().wait()


async def serve_silent(port: int) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    files = sys.argv[3:5] if len(sys.argv) >= 5 else [None, None]
    if kind == "hypercorn":
        asyncio.run(serve_hypercorn(port, files[0], files[1]))
    elif kind == "tls-http1":
        asyncio.run(serve_tls_http1(port, sys.argv[3], sys.argv[4]))
    else:
        asyncio.run(serve_silent(port))
