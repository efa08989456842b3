"""Payments service of the ticketing case study: charges a user, with a realistic latency.

    python examples/ticketing/payments_service.py

Environment:
    PORT                listen port (default 8090); HOST (default 127.0.0.1)
    PAYMENTS_MEDIAN_MS  median latency of a charge in ms (default 3); the latency is
                        lognormal around it, with PAYMENTS_SIGMA (default 0.5)
    PAYMENTS_FAIL_RATE  share of charges answered 502, as a flaky processor (default 0)
    SEED                seed of the latency and failure draws (default 0)

POST /charge {"user": str, "amount": number} -> 200 {"charge_id", "user", "amount"}
GET /health -> 200 {"status": "ok"}
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import sys
import uuid
from typing import Any

from aiohttp import web


class Payments:
    def __init__(self, env: dict[str, str]) -> None:
        self.median_s = float(env.get("PAYMENTS_MEDIAN_MS", "3")) / 1000
        self.sigma = float(env.get("PAYMENTS_SIGMA", "0.5"))
        self.fail_rate = float(env.get("PAYMENTS_FAIL_RATE", "0"))
        self.rng = random.Random(int(env.get("SEED", "0")))
        self.charges = 0

    def latency_s(self) -> float:
        if self.median_s <= 0:
            return 0.0
        return self.rng.lognormvariate(math.log(self.median_s), self.sigma)

    async def charge(self, request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        user, amount = body.get("user"), body.get("amount")
        if not isinstance(user, str) or isinstance(amount, bool):
            return web.json_response({"error": "user must be a string"}, status=400)
        if not isinstance(amount, int | float):
            return web.json_response({"error": "amount must be a number"}, status=400)
        delay, failed = self.latency_s(), self.rng.random() < self.fail_rate
        await asyncio.sleep(delay)  # the processor's own response time
        if failed:
            return web.json_response({"error": "processor unavailable"}, status=502)
        self.charges += 1
        charge_id = f"ch_{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
        return web.json_response({"charge_id": charge_id, "user": user, "amount": amount})

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "charges": self.charges})


def build_app(env: dict[str, str]) -> web.Application:
    payments = Payments(env)
    app = web.Application()
    app.router.add_post("/charge", payments.charge)
    app.router.add_get("/health", payments.health)
    return app


def main() -> None:
    env = dict(os.environ)
    host, port = env.get("HOST", "127.0.0.1"), int(env.get("PORT", "8090"))
    print(f"payments on http://{host}:{port}", file=sys.stderr)
    web.run_app(
        build_app(env), host=host, port=port, access_log=None, print=None, shutdown_timeout=2
    )


if __name__ == "__main__":
    main()
