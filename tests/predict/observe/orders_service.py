"""Orders paid through an HTTP dependency. Planted race: a call retried after a client
timeout without an idempotency key charges twice when the slow first call took effect.

    POST /orders {"amount"} -> 201 {"order", "charge", "attempts"} | 502 after 3 timeouts
        up to 3 times, each with a 50 ms client timeout (CHARGE_TIMEOUT_MS):
        buggy:   POST {PAYMENTS_URL}/charges {"order", "amount"}
        correct: the same, with the header Idempotency-Key: <order id> on every try
    GET /charges -> the dependency's GET {PAYMENTS_URL}/charges (its charge and order counts)
    DELETE /charges -> the dependency's DELETE {PAYMENTS_URL}/charges (a scenario's setup)

Env: PORT, PAYMENTS_URL, MODE (buggy | correct), CHARGE_TIMEOUT_MS (default 50).
"""

from __future__ import annotations

import os
import uuid

import aiohttp
from aiohttp import web
from service_kit import mode, serve

PAYMENTS_URL = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:8090").rstrip("/")
TIMEOUT = aiohttp.ClientTimeout(total=float(os.environ.get("CHARGE_TIMEOUT_MS", "50")) / 1000)
ATTEMPTS = 3


async def place(request: web.Request) -> web.Response:
    order = str(uuid.uuid4())
    payload = {"order": order, "amount": (await request.json()).get("amount", 1)}
    headers = {"Idempotency-Key": order} if mode() == "correct" else {}
    session: aiohttp.ClientSession = request.app["payments"]
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with session.post(
                f"{PAYMENTS_URL}/charges", json=payload, headers=headers, timeout=TIMEOUT
            ) as response:
                charged = await response.json()
            return web.json_response({**charged, "attempts": attempt}, status=201)
        except TimeoutError:
            continue
    return web.json_response({"order": order, "error": "payments timed out"}, status=502)


async def charges(request: web.Request) -> web.Response:
    """The dependency's charges, read or forgotten (GET or DELETE passed through)."""
    session: aiohttp.ClientSession = request.app["payments"]
    async with session.request(request.method, f"{PAYMENTS_URL}/charges") as response:
        return web.json_response(await response.json())


async def start(app: web.Application) -> None:
    app["payments"] = aiohttp.ClientSession()


async def stop(app: web.Application) -> None:
    await app["payments"].close()


def main() -> None:
    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/orders", place)
    app.router.add_get("/charges", charges)
    app.router.add_delete("/charges", charges)
    serve(app, "orders")


if __name__ == "__main__":
    main()
