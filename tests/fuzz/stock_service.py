"""A small buggy stock service for the fuzz phase tests (aiohttp + PostgreSQL).

POST /items/{item}/take {"qty": int, "note": str} takes `qty` units of an item:
- qty is not range-checked: 0 and negative quantities are accepted and *raise*
  the stock above its capacity (the `stock-within-capacity` invariant catches it),
  and the 201 answer echoes a qty the OpenAPI document forbids;
- a qty past PostgreSQL's INTEGER range fails in the database: 500;
- the note is stored as text: a NUL byte fails in the database (500), or, with
  CRASH_ON_NUL=1, kills the process (a replica dies).

FIXED=1 validates qty (1..10), the note and the item name, answering 400 (404) instead;
in a thread, `fixed=True` does, or `switch["fixed"]` while it is true.
Run as a script (PORT, DATABASE_URL) or serve `make_app(dsn)` in a thread.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import psycopg
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (item text PRIMARY KEY, left_qty integer NOT NULL);
CREATE TABLE IF NOT EXISTS takes (id serial PRIMARY KEY, item text NOT NULL, qty integer NOT NULL,
                                  note text NOT NULL DEFAULT '');
INSERT INTO stock VALUES ('apple', 100) ON CONFLICT DO NOTHING;
"""
RESET = "UPDATE stock SET left_qty = 100; DELETE FROM takes"


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def make_app(
    dsn: str,
    *,
    fixed: bool = False,
    crash_on_nul: bool = False,
    switch: Mapping[str, bool] | None = None,
) -> web.Application:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    connection: list[psycopg.Connection] = []

    def database() -> psycopg.Connection:
        """One connection per process, opened on first use (requests run one at a time here)."""
        if not connection or connection[0].closed:
            connection[:] = [psycopg.connect(dsn, autocommit=True)]
        return connection[0]

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def take(request: web.Request) -> web.Response:
        fixed_now = fixed or (switch is not None and switch["fixed"])
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "an object is expected"}, status=400)
        qty, note = body.get("qty"), body.get("note", "")
        if crash_on_nul and isinstance(note, str) and "\x00" in note:
            os._exit(3)
        if isinstance(qty, bool) or not isinstance(qty, int) or not isinstance(note, str):
            return web.json_response({"error": "qty is an integer, note a string"}, status=400)
        if fixed_now and (not 1 <= qty <= 10 or "\x00" in note):
            return web.json_response({"error": "qty must be 1..10, note without NUL"}, status=400)
        item = request.match_info["item"]
        if fixed_now and not (item.isascii() and item.isprintable()):
            return web.json_response({"error": "no such item"}, status=404)
        try:
            return store(item, qty, note)
        except Refused as refused:  # rolled back
            return web.json_response({"error": refused.message}, status=refused.status)
        except (psycopg.Error, UnicodeEncodeError) as exc:  # out of range, NUL, surrogates: a 500
            return web.Response(status=500, text=f"database error: {type(exc).__name__}")

    def store(item: str, qty: int, note: str) -> web.Response:
        with database().transaction():
            conn = database()
            conn.execute(
                "INSERT INTO takes (item, qty, note) VALUES (%s, %s, %s)", (item, qty, note)
            )
            row = conn.execute(
                "UPDATE stock SET left_qty = left_qty - %s WHERE item = %s RETURNING left_qty",
                (qty, item),
            ).fetchone()
            if row is None:
                raise Refused(404, "no such item")
            if row[0] < 0:
                raise Refused(409, "sold out")
        return web.json_response({"item": item, "qty": qty, "left": row[0]}, status=201)

    async def reset(request: web.Request) -> web.Response:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(RESET)
        return web.json_response({"status": "ok"})

    async def close(app: web.Application) -> None:
        for conn in connection:
            conn.close()

    @web.middleware
    async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:  # the framework's own 404/405 in the documented shape
            return web.json_response({"error": exc.reason}, status=exc.status)

    app = web.Application(middlewares=[json_errors])
    app.on_cleanup.append(close)
    app.router.add_get("/health", health)
    app.router.add_post("/reset", reset)
    app.router.add_post("/items/{item}/take", take)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(
            os.environ["DATABASE_URL"],
            fixed=os.environ.get("FIXED") == "1",
            crash_on_nul=os.environ.get("CRASH_ON_NUL") == "1",
        ),
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        access_log=None,
        print=None,
    )
