"""Scheduled jobs run under a Redis lease. Planted race: the work nearly outlasts the lease,
so a second holder can run alongside the first and one of their updates is lost.

    POST /jobs/{name}/run -> 200 {"ran": true, "runs"} | 409 {"ran": false}
        SET lock:job:{name} <token> NX PX <LEASE_MS>      (not set: 409)
        buggy:   SELECT runs FROM jobs WHERE name = %s
                 (work: WORK_MS)
                 UPDATE jobs SET last_run = now(), runs = %s WHERE name = %s
                 DEL lock:job:{name}
        correct: INCR fence:job:{name}
                 (work: WORK_MS)
                 UPDATE jobs SET last_run = now(), runs = runs + 1, fence = %s
                     WHERE name = %s AND fence < %s RETURNING runs     (no row: 409, fenced out)
                 EVAL <RELEASE> 1 lock:job:{name} <token>
    GET /jobs/{name} -> {"runs", "fence"}:  SELECT runs, fence FROM jobs WHERE name = %s

Schema at start: jobs (name text primary key, runs bigint, last_run timestamptz, fence bigint);
a job's row is inserted by the scenario's setup.
Env: PORT, DATABASE_URL, REDIS_URL, MODE (buggy | correct), LEASE_MS (default 100),
WORK_MS (a range, default 60-90).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets

import redis.asyncio as aioredis
from aiohttp import web
from service_kit import Postgres, mode, serve

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (name text PRIMARY KEY, runs bigint NOT NULL DEFAULT 0,"
    " last_run timestamptz, fence bigint NOT NULL DEFAULT 0)"
)
FENCED_UPDATE = (
    "UPDATE jobs SET last_run = now(), runs = runs + 1, fence = %s"
    " WHERE name = %s AND fence < %s RETURNING runs"
)
# Delete the lock only while it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

LEASE_MS = int(os.environ.get("LEASE_MS", "100"))
WORK_MS = [float(bound) for bound in os.environ.get("WORK_MS", "60-90").split("-")]
work_time = random.Random(secrets.randbits(64))
db = Postgres(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
cache = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


async def work() -> None:
    await asyncio.sleep(work_time.uniform(WORK_MS[0], WORK_MS[-1]) / 1000)


async def run_buggy(name: str) -> int:
    async with db.connection() as conn:
        row = await (
            await conn.execute("SELECT runs FROM jobs WHERE name = %s", (name,))
        ).fetchone()
        runs = (row[0] if row else 0) + 1
        await work()
        await conn.execute(
            "UPDATE jobs SET last_run = now(), runs = %s WHERE name = %s", (runs, name)
        )
    await cache.delete(f"lock:job:{name}")
    return runs


async def run_fenced(name: str, token: str) -> int | None:
    fence = await cache.incr(f"fence:job:{name}")
    await work()
    async with db.connection() as conn:
        row = await (await conn.execute(FENCED_UPDATE, (fence, name, fence))).fetchone()
    await cache.eval(RELEASE, 1, f"lock:job:{name}", token)
    return None if row is None else int(row[0])


async def run(request: web.Request) -> web.Response:
    name, token = request.match_info["name"], secrets.token_hex(8)
    if not await cache.set(f"lock:job:{name}", token, nx=True, px=LEASE_MS):
        return web.json_response({"ran": False, "why": "locked"}, status=409)
    runs = await run_buggy(name) if mode() == "buggy" else await run_fenced(name, token)
    if runs is None:
        return web.json_response({"ran": False, "why": "fenced out"}, status=409)
    return web.json_response({"ran": True, "runs": runs})


async def show(request: web.Request) -> web.Response:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT runs, fence FROM jobs WHERE name = %s", (request.match_info["name"],)
        )
        row = await cur.fetchone()
    if row is None:
        return web.json_response({"error": "no such job"}, status=404)
    return web.json_response({"runs": row[0], "fence": row[1]})


async def start(_app: web.Application) -> None:
    await db.create_schema(SCHEMA, lock_id=7_303_203)


async def stop(_app: web.Application) -> None:
    await db.close()
    await cache.aclose()


def main() -> None:
    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/jobs/{name}/run", run)
    app.router.add_get("/jobs/{name}", show)
    serve(app, "jobs")


if __name__ == "__main__":
    main()
