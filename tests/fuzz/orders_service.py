"""An in-memory orders API for the ad hoc fuzz tests (see orders_openapi.yaml).

Buggy: qty is not range-checked (0 and negative are accepted and echoed,
which the document forbids), a qty past 2**31 - 1 raises (500), and a NUL
in the user name drops the connection without an answer. `fixed=True`
answers 400 to all of these, as does `switch["fixed"]` while it is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

INT32_MAX = 2**31 - 1


def make_app(*, fixed: bool = False, switch: Mapping[str, bool] | None = None) -> web.Application:
    orders: dict[str, dict[str, Any]] = {}

    async def create(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=_loads)
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "an object is expected"}, status=400)
        user, qty = body.get("user"), body.get("qty")
        if not isinstance(user, str) or isinstance(qty, bool) or not isinstance(qty, int):
            return web.json_response({"error": "user is a string, qty an integer"}, status=400)
        fixed_now = fixed or (switch is not None and switch["fixed"])
        if fixed_now and (not 1 <= qty <= 10 or not 1 <= len(user) <= 32 or "\x00" in user):
            return web.json_response({"error": "qty 1..10, user 1..32 characters"}, status=400)
        if "\x00" in user:
            assert request.transport is not None
            request.transport.abort()  # the crash: no answer at all
            raise web.HTTPInternalServerError
        if qty > INT32_MAX:
            return web.json_response({"error": "integer out of range"}, status=500)  # the bug
        order = {"id": str(len(orders) + 1), "user": user, "qty": qty}
        orders[order["id"]] = order
        return web.json_response(order, status=201)

    async def read(request: web.Request) -> web.Response:
        order = orders.get(request.match_info["order_id"])
        if order is None:
            return web.json_response({"error": "no such order"}, status=404)
        return web.json_response(order)

    @web.middleware
    async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 500:
                raise
            return web.json_response({"error": exc.reason}, status=exc.status)

    app = web.Application(middlewares=[json_errors])
    app.router.add_post("/orders", create)
    app.router.add_get("/orders/{order_id}", read)
    return app


def _loads(text: str) -> Any:
    import json

    return json.loads(text)
