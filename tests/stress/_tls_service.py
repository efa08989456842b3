"""A counting HTTPS service for the TLS target tests, on 127.0.0.1 in a thread or a process.

    POST /hit     counts one hit; answers {"n": <hits so far>}
    GET  /count   {"count": <hits>, "client_certs": <requests that came with a client cert>}
    GET  /health  200

`serve_tls(certs)` runs it in a thread of the test; `python _tls_service.py PORT CERT KEY`
runs it as a replica heisen starts (`PORT` from the environment when given as "env").
Certificates are made per test with trustme (`make_tls_files`): a server certificate for
127.0.0.1 and localhost, a client certificate from the same CA, and a CA that signed nothing.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path  # signed the server's and the client's certificates
    cert: Path  # the server's: 127.0.0.1 and localhost unless made for other names
    key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def make_tls_files(directory: Path, names: tuple[str, ...] = (HOST, "localhost")) -> TlsFiles:
    """Certificates in `directory`; the server's is issued for `names`."""
    import trustme

    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert(*names)
    client = ca.issue_cert("client.heisen.test")
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca=directory / "ca.pem",
        cert=directory / "cert.pem",
        key=directory / "key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        other_ca=directory / "other-ca.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    other.cert_pem.write_to_path(str(files.other_ca))
    server.private_key_pem.write_to_path(str(files.key))
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    return files


@dataclass
class Counts:
    hits: int = 0
    client_certs: int = 0
    seen: list[str] = field(default_factory=list)


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """The server's context; with `client_ca`, a client certificate it signed is required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def make_app(counts: Counts) -> Any:
    from aiohttp import web

    async def hit(request: web.Request) -> web.Response:
        counts.hits += 1
        transport = request.transport
        if transport is not None and transport.get_extra_info("peercert"):
            counts.client_certs += 1
        return web.json_response({"n": counts.hits})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"count": counts.hits, "client_certs": counts.client_certs})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hit", hit)
    app.router.add_get("/count", count)
    app.router.add_get("/health", health)
    return app


@dataclass(frozen=True, slots=True)
class TlsService:
    port: int
    counts: Counts

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"


@contextmanager
def serve_tls(context: ssl.SSLContext) -> Iterator[TlsService]:
    """The service over TLS on 127.0.0.1 at an ephemeral port, in its own thread; stopped after."""
    from support import serve_app  # here: as a replica, this file runs without tests/ on its path

    counts = Counts()
    with serve_app(lambda: make_app(counts), ssl_context=context) as url:
        yield TlsService(int(url.rsplit(":", 1)[1]), counts)


def main(argv: list[str]) -> None:
    """A replica: `PORT CERT KEY`, serving until killed."""
    from aiohttp import web

    port = int(os.environ["PORT"] if argv[0] == "env" else argv[0])
    context = server_context(Path(argv[1]), Path(argv[2]))
    web.run_app(
        make_app(Counts()), host=HOST, port=port, ssl_context=context, print=None, access_log=None
    )


if __name__ == "__main__":
    main(sys.argv[1:])
