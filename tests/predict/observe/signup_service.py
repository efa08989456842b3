"""Sign-up by email in PostgreSQL. Planted race: check-then-insert duplicates a user.

    POST /users {"email"} -> 201 {"id", "created": true} | 200 {"created": false}
        SELECT id FROM users WHERE email = %s      (a row: 200, nothing written)
        (WINDOW_MS)
        buggy:   INSERT INTO users (email) VALUES (%s) RETURNING id
        correct: INSERT INTO users (email) VALUES (%s) ON CONFLICT (email) DO NOTHING RETURNING id
    GET /users?email=... -> {"count": n}:  SELECT count(*) FROM users WHERE email = %s

Schema at start: users (id bigserial primary key, email text not null), with
UNIQUE (email) in correct mode only.
Env: PORT, DATABASE_URL, MODE (buggy | correct), WINDOW_MS (default 3).
"""

from __future__ import annotations

import os

from aiohttp import web
from service_kit import Postgres, mode, serve, window

SCHEMA = {
    "buggy": "CREATE TABLE IF NOT EXISTS users (id bigserial PRIMARY KEY, email text NOT NULL)",
    "correct": "CREATE TABLE IF NOT EXISTS users"
    " (id bigserial PRIMARY KEY, email text NOT NULL, UNIQUE (email))",
}
INSERT = {
    "buggy": "INSERT INTO users (email) VALUES (%s) RETURNING id",
    "correct": "INSERT INTO users (email) VALUES (%s) ON CONFLICT (email) DO NOTHING RETURNING id",
}

db = Postgres(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))


async def sign_up(request: web.Request) -> web.Response:
    email = str((await request.json())["email"])
    async with db.connection() as conn:
        found = await (
            await conn.execute("SELECT id FROM users WHERE email = %s", (email,))
        ).fetchone()
        if found is not None:
            return web.json_response({"id": found[0], "created": False})
        await window()
        inserted = await (await conn.execute(INSERT[mode()], (email,))).fetchone()
    if inserted is None:  # correct mode: someone else inserted it in between
        return web.json_response({"created": False})
    return web.json_response({"id": inserted[0], "created": True}, status=201)


async def count(request: web.Request) -> web.Response:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM users WHERE email = %s", (request.query["email"],)
        )
        row = await cur.fetchone()
    return web.json_response({"count": row[0] if row else 0})


async def start(_app: web.Application) -> None:
    await db.create_schema(SCHEMA[mode()], lock_id=7_303_201)


async def stop(_app: web.Application) -> None:
    await db.close()


def main() -> None:
    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/users", sign_up)
    app.router.add_get("/users", count)
    serve(app, "signup")


if __name__ == "__main__":
    main()
