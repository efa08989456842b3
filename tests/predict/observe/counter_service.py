"""A counter in Redis. Planted race: lost update (GET then SET of the same key).

    POST /counters/{name}/increment -> {"value": n}
        buggy:   GET counter:{name}; (WINDOW_MS); SET counter:{name} <value + 1>
        correct: INCR counter:{name}
    GET /counters/{name} -> {"value": n}:  GET counter:{name}

Env: PORT, REDIS_URL, MODE (buggy | correct), WINDOW_MS (default 3).
"""

from __future__ import annotations

import os

import redis.asyncio as aioredis
from aiohttp import web
from service_kit import mode, serve, window

cache = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


async def increment(request: web.Request) -> web.Response:
    key = f"counter:{request.match_info['name']}"
    if mode() == "correct":
        value = await cache.incr(key)
    else:
        value = int(await cache.get(key) or 0) + 1
        await window()
        await cache.set(key, value)
    return web.json_response({"value": value})


async def read(request: web.Request) -> web.Response:
    value = await cache.get(f"counter:{request.match_info['name']}")
    return web.json_response({"value": int(value or 0)})


async def stop(_app: web.Application) -> None:
    await cache.aclose()


def main() -> None:
    app = web.Application()
    app.on_cleanup.append(stop)
    app.router.add_post("/counters/{name}/increment", increment)
    app.router.add_get("/counters/{name}", read)
    serve(app, "counter")


if __name__ == "__main__":
    main()
