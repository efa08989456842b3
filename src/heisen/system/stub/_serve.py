"""Running a stub server in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Collection
from pathlib import Path

from heisen._eventloop import run as run_loop
from heisen._redact import redact_text
from heisen.system.stub._http import HttpRequest
from heisen.system.stub._mappings import Mapping
from heisen.system.stub._server import StubServer

log = logging.getLogger("heisen.system.stub")


def serve(
    root: Path | None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 0,
    journal_limit: int = 10_000,
    verbose: bool = False,
    port_file: Path | None = None,
    allow_hosts: Collection[str] = (),
) -> None:
    """Serve until SIGINT or SIGTERM, then close every connection and return.

    Mappings are loaded (and a PipelineError raised) before the port is
    bound. With `port_file`, the bound port is written there once listening,
    for a parent that asked for port 0. A `proxyBaseUrl` may point at
    loopback and at `allow_hosts` only.
    """
    server = StubServer(
        root,
        host=host,
        port=port,
        seed=seed,
        journal_limit=journal_limit,
        allow_hosts=allow_hosts,
    )
    if verbose:
        server.on_request = _log_request
    run_loop(_serve(server, port_file))


async def _serve(server: StubServer, port_file: Path | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        port = await server.start()
        if port_file is not None:
            port_file.write_text(f"{port}\n")
        log.info(
            "heisen stub listening on %s (%d mappings, seed %d, journal limit %d)",
            server.url,
            len(server.core.registry),
            server.core.seed,
            server.core.journal.limit,
        )
        await stop.wait()
        log.info("heisen stub stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await server.stop()


def _log_request(request: HttpRequest, status: int, mapping: Mapping | None) -> None:
    log.info(
        "%s %s -> %d %s",
        request.method,
        redact_text(request.target),
        status,
        mapping.label if mapping else "(no match)",
    )
