"""An orders API with three planted bugs, for the fuzz findings tests (three_bugs_openapi.yaml).

1. a `user` longer than 64 characters: 500 (the column is too narrow);
2. a `qty` outside int32: 500 (integer out of range);
3. `note: null`, which the document allows (`nullable: true`): 500.

All three answer the same error body, so only the failing field tells them
apart. With `switch["fixed"]` true the first two are 400 and null is stored.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping

from aiohttp import web

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def make_app(switch: MutableMapping[str, bool]) -> web.Application:
    async def create(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "an object is expected"}, status=400)
        user, qty, note = body.get("user"), body.get("qty"), body.get("note", "")
        if not isinstance(user, str) or isinstance(qty, bool) or not isinstance(qty, int):
            return web.json_response({"error": "user is a string, qty an integer"}, status=400)
        if not isinstance(note, str | None) or qty < 1 or not user:
            return web.json_response({"error": "qty is at least 1, user not empty"}, status=400)
        fixed = switch["fixed"]
        if len(user) > 64:
            if fixed:
                return web.json_response({"error": "user: at most 64 characters"}, status=400)
            return web.json_response({"error": "value too long for column"}, status=500)
        if not INT32_MIN <= qty <= INT32_MAX:
            if fixed:
                return web.json_response({"error": "qty: at most 2147483647"}, status=400)
            return web.json_response({"error": "integer out of range"}, status=500)
        if note is None and not fixed:
            return web.json_response({"error": "'NoneType' has no attribute 'strip'"}, status=500)
        return web.json_response({"id": "1"}, status=201)

    app = web.Application()
    app.router.add_post("/orders", create)
    return app
