"""Real servers for the TLS and multi-connection burst tests, each a subprocess on 127.0.0.1.

    hypercorn   this module's ASGI `app` (answers "<n> <HTTP version>", n counting requests)
    nghttpd     nghttp2's server, serving files from a document root (skipped when not installed)
    python _h2_servers.py uneven PORT
                an h2c server on `h2` whose first connection allows 10 concurrent streams
                and every later one 4; the third connection closes 20 ms after its SETTINGS
                (before any release, given settle_s=0.3); GET /refuse is refused (RST_STREAM REFUSED_STREAM);
                GET /goaway answers nothing and sends GOAWAY naming the stream before it

Certificates are made per test run with trustme (`make_certificates`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heisen.system import ManagedProcess, spawn, wait_for_port

HOST = "127.0.0.1"
NGHTTPD = shutil.which("nghttpd")


@dataclass(frozen=True, slots=True)
class Certificates:
    ca: Path  # the CA that signed `cert`
    cert: Path  # valid for 127.0.0.1 and localhost
    key: Path
    other_ca: Path  # a CA that signed nothing here


@dataclass(frozen=True, slots=True)
class RunningServer:
    host: str
    port: int
    process: ManagedProcess


def make_certificates(directory: Path) -> Certificates:
    import trustme

    ca, other = trustme.CA(), trustme.CA()
    leaf = ca.issue_cert(HOST, "localhost")
    paths = Certificates(
        directory / "ca.pem", directory / "cert.pem", directory / "key.pem", directory / "other.pem"
    )
    ca.cert_pem.write_to_path(str(paths.ca))
    other.cert_pem.write_to_path(str(paths.other_ca))
    leaf.private_key_pem.write_to_path(str(paths.key))
    with paths.cert.open("wb") as out:
        for pem in leaf.cert_chain_pems:
            out.write(pem.bytes())
    return paths


def start_hypercorn(
    work: Path,
    port: int,
    *,
    certs: Certificates | None,
    max_streams: int = 100,
    alpn: Sequence[str] = ("h2", "http/1.1"),
) -> RunningServer:
    """Hypercorn on `port`: TLS with `certs` (ALPN `alpn`), else cleartext (h2c and HTTP/1.1)."""
    work.mkdir(parents=True, exist_ok=True)
    lines = [
        f'bind = ["{HOST}:{port}"]',
        f"h2_max_concurrent_streams = {max_streams}",
        f"alpn_protocols = {json.dumps(list(alpn))}",
        "backlog = 2048",
    ]
    if certs is not None:
        lines += [f'certfile = "{certs.cert}"', f'keyfile = "{certs.key}"']
    config = work / "hypercorn.toml"
    config.write_text("\n".join(lines) + "\n")
    argv = [sys.executable, "-m", "hypercorn", "--config", str(config), f"{__file__}:app"]
    return _started("hypercorn", argv, work, port)


def start_nghttpd(
    work: Path, port: int, *, certs: Certificates | None, max_streams: int = 100
) -> RunningServer:
    """nghttpd serving `work/docroot` (with `hello.txt`); TLS with `certs`, else h2c."""
    assert NGHTTPD is not None, "callers skip when nghttpd is not installed"
    docroot = work / "docroot"
    docroot.mkdir(parents=True, exist_ok=True)
    (docroot / "hello.txt").write_text("hello\n")
    argv = [NGHTTPD, "-a", HOST, "-d", str(docroot), f"--max-concurrent-streams={max_streams}"]
    if certs is None:
        argv += ["--no-tls", str(port)]
    else:
        argv += [str(port), str(certs.key), str(certs.cert)]
    return _started("nghttpd", argv, work, port)


def start_uneven(work: Path, port: int) -> RunningServer:
    argv = [sys.executable, __file__, "uneven", str(port)]
    return _started("uneven", argv, work, port)


def _started(name: str, argv: list[str], work: Path, port: int) -> RunningServer:
    process = spawn(name, argv, log_path=work / f"{name}.log")
    if not wait_for_port(HOST, port, deadline_s=20):
        process.stop()
        raise RuntimeError(f"{name} did not start:\n{process.tail()}")
    return RunningServer(HOST, port, process)


_count = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI: every request is answered 200 with "<n> <HTTP version>"."""
    global _count
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    _count += 1
    body = f"{_count} {scope['http_version']}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class UnevenServer(asyncio.Protocol):
    """See the module docstring. Connections are numbered as their client preface arrives,
    so that a readiness probe (connect, close) is not counted."""

    started = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.number = 0
        self.paths: dict[int, str] = {}

    def start(self) -> None:
        from h2.settings import SettingCodes, Settings

        UnevenServer.started += 1
        self.number = UnevenServer.started
        limit = 10 if self.number == 1 else 4
        self.conn.local_settings = Settings(
            client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: limit}
        )
        self.conn.initiate_connection()
        if self.number == 3:
            asyncio.get_running_loop().call_later(0.02, self.transport.close)

    def data_received(self, data: bytes) -> None:
        from h2.errors import ErrorCodes
        from h2.events import RequestReceived, StreamEnded

        if not self.number:
            self.start()
        for event in self.conn.receive_data(data):
            if isinstance(event, RequestReceived):
                headers = {str(name): str(value) for name, value in event.headers or ()}
                self.paths[event.stream_id] = headers[":path"]
            elif isinstance(event, StreamEnded):
                sid = event.stream_id
                path = self.paths[sid]
                if path == "/refuse":
                    self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
                elif path == "/goaway":
                    self.conn.close_connection(last_stream_id=sid - 2)
                    self.transport.write(self.conn.data_to_send())
                    self.transport.close()
                    return
                else:
                    body = f"conn {self.number} stream {sid}".encode()
                    self.conn.send_headers(
                        sid, [(":status", "200"), ("content-length", str(len(body)))]
                    )
                    self.conn.send_data(sid, body, end_stream=True)
        self.transport.write(self.conn.data_to_send())


async def serve_uneven(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UnevenServer, HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve_uneven(int(sys.argv[2])))
