"""Products in PostgreSQL, cached in Redis (cache-aside). Planted race: a stale value
repopulated into the cache by a reader that read the row before a concurrent update.

    GET /products/{id} -> {"id", "price", "version"}
        GET product:{id}                          (a hit answers from the cache)
        SELECT price, version FROM products WHERE id = %s
        (WINDOW_MS)
        buggy:   SET product:{id} <json>
        correct: EVAL <SET_IF_NEWER> 1 product:{id} <json> <version>
    PUT /products/{id} {"price"} -> {"id", "price", "version"}
        buggy:   UPDATE products SET price = %s WHERE id = %s RETURNING price, version
                 DEL product:{id}
        correct: UPDATE products SET price = %s, version = version + 1 WHERE id = %s
                     RETURNING price, version
                 EVAL <SET_IF_NEWER> 1 product:{id} <json> <version>
    GET /products/{id}/consistency -> {"cached": price | null, "stored": price, "stale_sets": n}
        GET product:{id}; SELECT price, version FROM products WHERE id = %s

Schema at start: products (id text primary key, price bigint, version bigint default 0).
Env: PORT, DATABASE_URL, REDIS_URL, MODE (buggy | correct), WINDOW_MS (default 3).
"""

from __future__ import annotations

import json
import os

import redis.asyncio as aioredis
from aiohttp import web
from service_kit import Postgres, mode, serve, window

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS products"
    " (id text PRIMARY KEY, price bigint NOT NULL, version bigint NOT NULL DEFAULT 0)"
)
SELECT = "SELECT price, version FROM products WHERE id = %s"
UPDATE = {
    "buggy": "UPDATE products SET price = %s WHERE id = %s RETURNING price, version",
    "correct": "UPDATE products SET price = %s, version = version + 1 WHERE id = %s"
    " RETURNING price, version",
}
# Cache the product only when no newer version of it is cached.
SET_IF_NEWER = """
local cached = redis.call('GET', KEYS[1])
if cached and tonumber(cjson.decode(cached)['version']) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

db = Postgres(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
cache = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


DELETED_AT: dict[str, int] = {}
"""product id -> the price whose update deleted its cache entry (buggy mode)."""
STALE_SETS: dict[str, int] = {}
"""product id -> how often another price was cached after that delete: the race."""


async def cache_product(product: dict[str, object]) -> None:
    key, value = f"product:{product['id']}", json.dumps(product)
    if mode() == "correct":
        await cache.eval(SET_IF_NEWER, 1, key, value, str(product["version"]))
    else:
        await cache.set(key, value)
        deleted_at = DELETED_AT.get(str(product["id"]))
        if deleted_at is not None and int(str(product["price"])) != deleted_at:
            STALE_SETS[str(product["id"])] = STALE_SETS.get(str(product["id"]), 0) + 1


async def read(request: web.Request) -> web.Response:
    product_id = request.match_info["id"]
    cached = await cache.get(f"product:{product_id}")
    if cached is not None:
        return web.json_response(json.loads(cached))
    async with db.connection() as conn:
        row = await (await conn.execute(SELECT, (product_id,))).fetchone()
    if row is None:
        return web.json_response({"error": "no such product"}, status=404)
    product = {"id": product_id, "price": row[0], "version": row[1]}
    await window()
    await cache_product(product)
    return web.json_response(product)


async def update(request: web.Request) -> web.Response:
    product_id = request.match_info["id"]
    price = int((await request.json())["price"])
    async with db.connection() as conn:
        row = await (await conn.execute(UPDATE[mode()], (price, product_id))).fetchone()
    if row is None:
        return web.json_response({"error": "no such product"}, status=404)
    product = {"id": product_id, "price": row[0], "version": row[1]}
    if mode() == "correct":
        await cache_product(product)
    else:
        await cache.delete(f"product:{product_id}")
        DELETED_AT[product_id] = int(row[0])
    return web.json_response(product)


async def consistency(request: web.Request) -> web.Response:
    product_id = request.match_info["id"]
    cached = await cache.get(f"product:{product_id}")
    async with db.connection() as conn:
        row = await (await conn.execute(SELECT, (product_id,))).fetchone()
    return web.json_response(
        {
            "cached": None if cached is None else json.loads(cached)["price"],
            "stored": None if row is None else row[0],
            "stale_sets": STALE_SETS.get(product_id, 0),
        }
    )


async def start(_app: web.Application) -> None:
    await db.create_schema(SCHEMA, lock_id=7_303_202)


async def stop(_app: web.Application) -> None:
    await db.close()
    await cache.aclose()


def main() -> None:
    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/products/{id}", read)
    app.router.add_put("/products/{id}", update)
    app.router.add_get("/products/{id}/consistency", consistency)
    serve(app, "catalog")


if __name__ == "__main__":
    main()
