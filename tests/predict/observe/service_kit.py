"""What the planted-race services share: env, a tiny PostgreSQL pool, the race window, serving.

A service script runs as `python <file>` from this folder, so `import service_kit` finds it.
The pool and the schema step send nothing but the statements the caller gives (plus the
advisory lock around the schema), so the traffic a link proxy decodes is the service's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from aiohttp import web


def mode() -> str:
    chosen = os.environ.get("MODE", "buggy")
    if chosen not in ("buggy", "correct"):
        raise SystemExit(f"MODE must be buggy or correct, not {chosen!r}")
    return chosen


async def window() -> None:
    """Sleep WINDOW_MS (default 3): widens the gap between a read and the write that uses it."""
    await asyncio.sleep(float(os.environ.get("WINDOW_MS", "3")) / 1000)


class Postgres:
    """Autocommit connections kept between requests; one per request in flight."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.idle: list[psycopg.AsyncConnection[Any]] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self.idle:
            conn = self.idle.pop()
        else:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        try:
            yield conn
        finally:
            if conn.broken or conn.closed:
                await conn.close()
            else:
                self.idle.append(conn)

    async def create_schema(self, ddl: str, lock_id: int) -> None:
        """Run `ddl` (idempotent) under an advisory lock: replicas start together."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
            try:
                await conn.execute(ddl)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))

    async def close(self) -> None:
        while self.idle:
            await self.idle.pop().close()


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "mode": mode()})


def serve(app: web.Application, name: str) -> None:
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    app.router.add_get("/health", health)
    print(f"{name} ({mode()}) on http://{host}:{port}", file=sys.stderr)
    web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=1)
