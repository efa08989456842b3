"""A single-use coupon: POST /redeem answers 200 the first time, 409 after.

MODE=buggy checks, awaits a 20 ms lookup, then marks the coupon used: concurrent
redemptions all pass the check. MODE=fixed holds a lock across check and act.
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

FIXED = os.environ.get("MODE") == "fixed"
used = 0
lock = asyncio.Lock()


async def redeem_once() -> bool:
    global used
    if used >= 1:
        return False
    await asyncio.sleep(0.02)  # the lookup between check and act
    used += 1
    return True


async def redeem(request: web.Request) -> web.Response:
    if FIXED:
        async with lock:
            accepted = await redeem_once()
    else:
        accepted = await redeem_once()
    return web.json_response({"accepted": accepted}, status=200 if accepted else 409)


async def reset(request: web.Request) -> web.Response:
    global used
    used = 0
    return web.json_response({"used": 0})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


app = web.Application()
app.add_routes([web.post("/redeem", redeem), web.post("/reset", reset), web.get("/health", health)])

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None)
