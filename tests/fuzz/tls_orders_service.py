"""An HTTPS orders service with one planted bug, for the fuzz-over-TLS tests.

    POST /orders {"qty": int}   201 {"qty": qty}; a qty above 1000 is a 500 (the bug)
    GET  /health                200

`serve_https(context)` runs it on 127.0.0.1 at an ephemeral port in a thread of the test.
Certificates come from the TLS target tests' helpers (`make_tls_files`, `server_context`).
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "stress"))  # _tls_service

from _tls_service import TlsFiles, make_tls_files, server_context

__all__ = ["OPENAPI", "TlsFiles", "make_tls_files", "serve_https", "server_context"]

OPENAPI = """\
openapi: 3.0.3
info: {title: Orders over TLS (fuzz tests), version: "1.0"}
paths:
  /orders:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [qty]
              properties:
                qty: {type: integer, minimum: 1, maximum: 1000}
      responses:
        "201": {description: Ordered.}
        "400": {description: Malformed.}
"""


def make_app() -> Any:
    from aiohttp import web

    async def order(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        qty = body.get("qty") if isinstance(body, dict) else None
        if not isinstance(qty, int) or isinstance(qty, bool):
            return web.json_response({"error": "qty must be an integer"}, status=400)
        if qty > 1000:
            return web.json_response({"error": "stock overflow"}, status=500)
        return web.json_response({"qty": qty}, status=201)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/orders", order)
    app.router.add_get("/health", health)
    return app


@contextmanager
def serve_https(context: ssl.SSLContext) -> Iterator[str]:
    """The service over TLS at https://127.0.0.1:PORT (yielded); stopped after."""
    from support import serve_app  # here: as a service, this file runs without tests/ on its path

    with serve_app(make_app, ssl_context=context) as url:
        yield url
