"""A counter that acknowledges each hit at once and applies it 300 ms later: durable, but not at once.

POST /hit answers 200 before the count moves; GET /count reads it; POST /reset zeroes it.
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

DELAY_S = 0.3
count = 0
pending: set[asyncio.Task[None]] = set()


async def apply_later() -> None:
    global count
    await asyncio.sleep(DELAY_S)
    count += 1


async def hit(request: web.Request) -> web.Response:
    task = asyncio.create_task(apply_later())
    pending.add(task)
    task.add_done_callback(pending.discard)
    return web.json_response({"accepted": True})


async def read(request: web.Request) -> web.Response:
    return web.json_response({"count": count})


async def reset(request: web.Request) -> web.Response:
    global count
    count = 0
    return web.json_response({"count": 0})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


app = web.Application()
app.add_routes(
    [
        web.post("/hit", hit),
        web.get("/count", read),
        web.post("/reset", reset),
        web.get("/health", health),
    ]
)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None)
