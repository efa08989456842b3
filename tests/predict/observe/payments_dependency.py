"""The payments dependency of orders_service.py: records charges in memory, slow on every
2nd call it receives (SLOW_MS, default 120), and dedupes by the Idempotency-Key header.

    POST /charges {"order", "amount"} [Idempotency-Key: k] -> {"charge", "order"}
        the charge is recorded before the (possibly slow) answer: a caller that gave up
        waiting was still charged; a key seen before answers its first charge again
    GET /charges -> {"charges": n, "orders": number of distinct orders charged}
    DELETE /charges -> forget every charge (a scenario's setup)

Env: PORT, SLOW_MS.
"""

from __future__ import annotations

import asyncio
import itertools
import os

from aiohttp import web
from service_kit import serve

SLOW_S = float(os.environ.get("SLOW_MS", "120")) / 1000
calls = itertools.count(1)
charges: list[dict[str, str]] = []
by_key: dict[str, dict[str, str]] = {}


async def charge(request: web.Request) -> web.Response:
    slow = next(calls) % 2 == 0
    body = await request.json()
    key = request.headers.get("Idempotency-Key")
    recorded = by_key.get(key) if key else None
    if recorded is None:
        recorded = {"charge": f"ch_{len(charges) + 1}", "order": str(body["order"])}
        charges.append(recorded)
        if key:
            by_key[key] = recorded
    if slow:
        await asyncio.sleep(SLOW_S)
    return web.json_response(recorded)


async def count(_request: web.Request) -> web.Response:
    orders = {recorded["order"] for recorded in charges}
    return web.json_response({"charges": len(charges), "orders": len(orders)})


async def forget(_request: web.Request) -> web.Response:
    charges.clear()
    by_key.clear()
    return web.json_response({"charges": 0})


def main() -> None:
    app = web.Application()
    app.router.add_post("/charges", charge)
    app.router.add_get("/charges", count)
    app.router.add_delete("/charges", forget)
    serve(app, "payments")


if __name__ == "__main__":
    main()
