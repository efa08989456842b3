"""InventoryService of the ticketing case study: sells a fixed number of tickets per event.

PostgreSQL holds the truth (events, orders), Redis the cache read on the hot
path, and a payments service is called over HTTP during checkout. Several
replicas run side by side against the same PostgreSQL and Redis.

    python examples/ticketing/inventory_service.py

Environment:
    PORT            listen port (default 8080); HOST (default 127.0.0.1)
    DATABASE_URL    postgresql://... (schema.sql is applied at start, idempotently)
    REDIS_URL       redis://...; several comma-separated URLs: the first is the cache,
                    all of them together hold the checkout lock (Redlock quorum)
    PAYMENTS_URL    base URL of the payments service (POST /charge)
    MODE            buggy (default) | fixed
    DB_POOL_SIZE    PostgreSQL connections per replica (default 10)
    LOCK_WAIT_MS    fixed mode: how long a checkout waits for the event lock (default 3000)
    LOCK_TTL_MS     fixed mode: lock lease (default 2000, below LOCK_WAIT_MS: the lease of
                    a replica killed while holding the lock runs out before the
                    checkouts waiting for it give up with 503)
    DEFAULT_EVENT_ID, DEFAULT_CAPACITY, DEFAULT_PRICE
                    the event that exists after start and after POST /reset ("concert", 100, 50)

Redis keys: `inventory:{event}` tickets left, `event:{event}` JSON summary read
first by GET /events/{event}, `lock:event:{event}` the checkout lock.

MODE=buggy is written the way the production code was, races included:
- checkout reads the cached count, checks it, pays, then inserts the order and
  DECRBYs the count: a check-then-act race, concurrent checkouts oversell;
- qty is not validated: 0 and negative quantities are stored (and give stock
  back), a qty past the integer range fails in the database (500);
- update writes the row, sets the cached count, and drops the cached summary in
  a separate step, while readers repopulate the summary from the database
  (cache-aside): a reader that read the row before the update and writes the
  summary after the drop leaves the old value cached for every later read.

MODE=fixed: a lock per event (local asyncio lock, then a Redis lock with a
random token released by compare-and-delete, Redlock quorum across several
Redis URLs, bounded retries with jitter, 503 when it cannot be had in time);
inside it a transaction with SELECT ... FOR UPDATE checks capacity - sold in
the database, and the cache is written only after the commit; payment happens
after the reservation, and a failed payment cancels the order. Updates write
the row then the summary and the count together in MULTI/EXEC; readers only
populate the summary with a version not older than the cached one. qty is
validated (integer 1..10), unknown fields are rejected (400).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import redis.asyncio as aioredis
from aiohttp import web
from psycopg.pq import TransactionStatus
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
SCHEMA_LOCK_ID = 7_303_181  # pg_advisory_lock key: replicas starting together apply the schema once
MAX_QTY = 10

RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# Write the summary only when the cached one is missing or older than ours.
SET_IF_NEWER_LUA = """
local current = redis.call('get', KEYS[1])
if current then
    local ok, decoded = pcall(cjson.decode, current)
    if ok and tonumber(decoded['version']) >= tonumber(ARGV[2]) then
        return 0
    end
end
redis.call('set', KEYS[1], ARGV[1])
return 1
"""


RESERVE_SQL = """
WITH event AS (
    SELECT capacity, price FROM events WHERE id = %(event)s
), sold AS (
    SELECT coalesce(sum(qty), 0) AS qty FROM orders WHERE event_id = %(event)s
), reserved AS (
    INSERT INTO orders (event_id, user_name, qty, amount, status)
    SELECT %(event)s, %(user)s, %(qty)s, event.price * %(qty)s, 'reserved'
    FROM event, sold
    WHERE event.capacity - sold.qty >= %(qty)s
    RETURNING id, created_at
)
SELECT event.capacity - sold.qty, event.price, reserved.id, reserved.created_at
FROM event CROSS JOIN sold LEFT JOIN reserved ON true
"""


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def count_key(event_id: str) -> str:
    return f"inventory:{event_id}"


def summary_key(event_id: str) -> str:
    return f"event:{event_id}"


def lock_key(event_id: str) -> str:
    return f"lock:event:{event_id}"


# -- PostgreSQL ---------------------------------------------------------------------------


class PgPool:
    """A small bounded pool of autocommit connections; broken connections are dropped."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = None
            while self._idle and conn is None:
                candidate = self._idle.pop()
                if candidate.closed or candidate.broken:
                    await candidate.close()
                else:
                    conn = candidate
            if conn is None:
                conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=5
                )
            try:
                yield conn
            finally:
                healthy = not (conn.closed or conn.broken)
                if healthy and conn.info.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:
                    await conn.close()

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


async def apply_schema(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        try:
            await conn.execute(SCHEMA_PATH.read_text())
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))


# -- the Redis lock -----------------------------------------------------------------------


class EventLock:
    """Mutual exclusion per event across replicas: Redlock over one or more Redis servers."""

    def __init__(self, clients: list[aioredis.Redis], ttl_ms: int, wait_ms: int) -> None:
        self._clients = clients
        self._release = [client.register_script(RELEASE_LUA) for client in clients]
        self._ttl_ms = ttl_ms
        self._wait_s = wait_ms / 1000
        self._quorum = len(clients) // 2 + 1
        self._local: dict[str, asyncio.Lock] = {}
        self._rng = random.Random(secrets.randbits(64))

    @contextlib.asynccontextmanager
    async def hold(
        self, event_id: str, still_needed: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[None]:
        """Hold the event's lock; `still_needed` runs between the local and the Redis lock
        and may raise to give up early (a sold-out event needs no Redis lock)."""
        deadline = time.monotonic() + self._wait_s
        local = self._local.setdefault(event_id, asyncio.Lock())
        try:
            await asyncio.wait_for(local.acquire(), timeout=self._wait_s)
        except TimeoutError:
            raise HttpError(503, "event is busy, try again") from None
        try:
            if still_needed is not None:
                await still_needed()
            key = lock_key(event_id)
            token = await self._acquire(key, deadline)
            try:
                yield
            finally:
                await self._release_all(key, token)
        finally:
            local.release()

    async def _acquire(self, key: str, deadline: float) -> str:
        attempt = 0
        while True:
            token = secrets.token_hex(16)
            started = time.monotonic()
            results = await asyncio.gather(
                *(c.set(key, token, nx=True, px=self._ttl_ms) for c in self._clients),
                return_exceptions=True,
            )
            granted = sum(1 for result in results if result is True)
            elapsed_ms = (time.monotonic() - started) * 1000
            drift_ms = self._ttl_ms * 0.01 + 2
            if granted >= self._quorum and elapsed_ms + drift_ms < self._ttl_ms:
                return token
            if granted:
                await self._release_all(key, token)
            now = time.monotonic()
            if now >= deadline:
                raise HttpError(503, "could not lock the event in time, try again")
            backoff = min(0.05, 0.002 * 2**attempt) * (0.5 + self._rng.random())
            await asyncio.sleep(min(backoff, deadline - now))
            attempt += 1

    async def _release_all(self, key: str, token: str) -> None:
        await asyncio.gather(
            *(release(keys=[key], args=[token]) for release in self._release),
            return_exceptions=True,
        )


# -- the service --------------------------------------------------------------------------


class Inventory:
    def __init__(self, env: dict[str, str]) -> None:
        self.mode = env.get("MODE", "buggy")
        if self.mode not in ("buggy", "fixed"):
            raise SystemExit(f"MODE must be buggy or fixed, not {self.mode!r}")
        self.dsn = env.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        self.redis_urls = [
            u.strip() for u in env.get("REDIS_URL", "redis://127.0.0.1:6379/0").split(",")
        ]
        self.payments_url = env.get("PAYMENTS_URL", "http://127.0.0.1:8090").rstrip("/")
        self.pool_size = int(env.get("DB_POOL_SIZE", "10"))
        self.lock_wait_ms = int(env.get("LOCK_WAIT_MS", "3000"))
        self.lock_ttl_ms = int(env.get("LOCK_TTL_MS", "2000"))
        self.default_event = env.get("DEFAULT_EVENT_ID", "concert")
        self.default_capacity = int(env.get("DEFAULT_CAPACITY", "100"))
        self.default_price = Decimal(env.get("DEFAULT_PRICE", "50"))
        self.pool: PgPool
        self.cache: aioredis.Redis
        self.lock_clients: list[aioredis.Redis]
        self.lock: EventLock
        self.http: aiohttp.ClientSession
        self.set_if_newer: Any

    async def start(self, _app: web.Application) -> None:
        await apply_schema(self.dsn)
        self.pool = PgPool(self.dsn, self.pool_size)
        self.lock_clients = [aioredis.Redis.from_url(url) for url in self.redis_urls]
        self.cache = self.lock_clients[0]
        self.set_if_newer = self.cache.register_script(SET_IF_NEWER_LUA)
        self.lock = EventLock(self.lock_clients, self.lock_ttl_ms, self.lock_wait_ms)
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200),
            timeout=aiohttp.ClientTimeout(total=5),
        )
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO events (id, name, capacity, price) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (self.default_event, self.default_event, self.default_capacity, self.default_price),
            )

    async def stop(self, _app: web.Application) -> None:
        await self.http.close()
        await self.pool.close()
        for client in self.lock_clients:
            await client.aclose()

    # -- database reads -----------------------------------------------------------------

    async def load_event(self, conn: psycopg.AsyncConnection[Any], event_id: str) -> dict[str, Any]:
        cur = await conn.execute(
            "SELECT name, capacity, price, version FROM events WHERE id = %s", (event_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise HttpError(404, f"no event {event_id!r}")
        name, capacity, price, version = row
        return {"name": name, "capacity": capacity, "price": float(price), "version": version}

    async def sold(self, conn: psycopg.AsyncConnection[Any], event_id: str) -> int:
        cur = await conn.execute(
            "SELECT coalesce(sum(qty), 0) FROM orders WHERE event_id = %s", (event_id,)
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def cached_count(self, event_id: str) -> int:
        """Tickets left according to the cache, filled from the database when missing."""
        raw = await self.cache.get(count_key(event_id))
        if raw is not None:
            return int(raw)
        async with self.pool.connection() as conn:
            event = await self.load_event(conn, event_id)
            left = event["capacity"] - await self.sold(conn, event_id)
        await self.cache.set(count_key(event_id), left, nx=True)
        return int(await self.cache.get(count_key(event_id)) or left)

    async def summary(self, event_id: str) -> tuple[dict[str, Any], int | None]:
        """The event summary, cache first (cache-aside); on a miss also the sold count.

        A miss reads the row and the sold count from the database, then caches the row.
        """
        raw = await self.cache.get(summary_key(event_id))
        if raw is not None:
            return json.loads(raw), None
        async with self.pool.connection() as conn:
            event = await self.load_event(conn, event_id)
            sold = await self.sold(conn, event_id)
        encoded = json.dumps(event)
        if self.mode == "fixed":
            await self.set_if_newer(keys=[summary_key(event_id)], args=[encoded, event["version"]])
        else:
            await self.cache.set(summary_key(event_id), encoded, ex=300)
        return event, sold

    # -- handlers -------------------------------------------------------------------------

    async def health(self, _request: web.Request) -> web.Response:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")
        await self.cache.ping()
        return web.json_response({"status": "ok", "mode": self.mode})

    async def get_event(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        summary, sold = await self.summary(event_id)
        available = await self.cached_count(event_id)
        if sold is None:
            async with self.pool.connection() as conn:
                sold = await self.sold(conn, event_id)
        return web.json_response(
            {
                "id": event_id,
                "name": summary["name"],
                "price": summary["price"],
                "capacity": summary["capacity"],
                "available": available,
                "remaining": available,
                "sold": sold,
                "version": summary["version"],
            }
        )

    async def checkout(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        body = await read_json(request)
        if self.mode == "fixed":
            return await self.checkout_fixed(event_id, body)
        return await self.checkout_buggy(event_id, body)

    async def checkout_buggy(self, event_id: str, body: dict[str, Any]) -> web.Response:
        user = str(body.get("user", "anonymous"))
        qty = body.get("qty", 1)
        available = await self.cached_count(event_id)
        if available <= 0:
            raise HttpError(409, "sold out")
        price = (await self.summary(event_id))[0]["price"]
        charge_id = await self.charge(user, price * qty)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO orders (event_id, user_name, qty, amount, charge_id)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id, created_at",
                (event_id, user, qty, price * qty, charge_id),
            )
            row = await cur.fetchone()
        assert row is not None
        await self.cache.decrby(count_key(event_id), qty)
        return order_response(row[0], event_id, user, qty, row[1])

    async def checkout_fixed(self, event_id: str, body: dict[str, Any]) -> web.Response:
        if not printable_text(event_id):
            raise HttpError(404, "no such event")
        unknown = sorted(set(body) - {"user", "qty"})
        if unknown:
            raise HttpError(400, f"unknown fields: {', '.join(unknown)}")
        user, qty = body.get("user"), body.get("qty")
        if not isinstance(user, str) or not 1 <= len(user) <= 64 or not printable_text(user):
            raise HttpError(400, "user must be printable text of 1 to 64 characters")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
            raise HttpError(400, f"qty must be an integer from 1 to {MAX_QTY}")

        async def not_sold_out() -> None:
            # The cache is written after each commit, under the lock: it is never below
            # the truth, so 0 means sold out and spares the lock and the database.
            cached = await self.cache.get(count_key(event_id))
            if cached is not None and int(cached) <= 0:
                raise HttpError(409, "sold out")

        await not_sold_out()
        async with self.lock.hold(event_id, not_sold_out):
            async with self.pool.connection() as conn:
                # One round trip: BEGIN, lock the row, then a new statement (a new snapshot
                # under READ COMMITTED, taken once the row lock is held) that counts what is
                # sold and inserts the order only if enough is left, COMMIT.
                async with conn.pipeline(), conn.transaction():
                    locked = await conn.execute(
                        "SELECT 1 FROM events WHERE id = %s FOR UPDATE", (event_id,)
                    )
                    reserved = await conn.execute(
                        RESERVE_SQL, {"event": event_id, "user": user, "qty": qty}
                    )
                if await locked.fetchone() is None:
                    raise HttpError(404, f"no event {event_id!r}")
                row = await reserved.fetchone()
                assert row is not None
                left, price, order_id, created_at = row
                if order_id is not None:
                    left -= qty
            await self.cache.set(count_key(event_id), left)  # after the commit
        if order_id is None:
            raise HttpError(409, "sold out" if left <= 0 else f"only {left} tickets left")
        try:
            charge_id = await self.charge(user, float(price * qty))
        except HttpError:
            await self.cancel(event_id, order_id)
            raise
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE orders SET status = 'paid', charge_id = %s WHERE id = %s",
                (charge_id, order_id),
            )
        return order_response(order_id, event_id, user, qty, created_at)

    async def cancel(self, event_id: str, order_id: uuid.UUID) -> None:
        async with self.lock.hold(event_id):
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    cur = await conn.execute(
                        "SELECT capacity FROM events WHERE id = %s FOR UPDATE", (event_id,)
                    )
                    row = await cur.fetchone()
                    await conn.execute("DELETE FROM orders WHERE id = %s", (order_id,))
                    left = (row[0] if row else 0) - await self.sold(conn, event_id)
            await self.cache.set(count_key(event_id), left)

    async def charge(self, user: str, amount: float) -> str:
        try:
            async with self.http.post(
                f"{self.payments_url}/charge", json={"user": user, "amount": float(amount)}
            ) as resp:
                if resp.status != 200:
                    raise HttpError(502, f"payment declined ({resp.status})")
                charge_id: str = (await resp.json())["charge_id"]
                return charge_id
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HttpError(502, f"payments unavailable: {exc!r}") from exc

    async def update_event(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        body = await read_json(request)
        fields = {key: body[key] for key in ("name", "price", "capacity") if key in body}
        if self.mode == "fixed":
            unknown = sorted(set(body) - {"name", "price", "capacity"})
            if unknown or not fields:
                raise HttpError(400, f"expected some of name, price, capacity; got {sorted(body)}")
            validate_update(fields)
            async with self.lock.hold(event_id):
                event, left = await self.write_event(event_id, fields)
                async with self.cache.pipeline(transaction=True) as pipe:  # MULTI/EXEC
                    pipe.set(summary_key(event_id), json.dumps(event))
                    pipe.set(count_key(event_id), left)
                    await pipe.execute()
        else:
            event, left = await self.write_event(event_id, fields)
            await self.cache.set(count_key(event_id), left)
            await self.cache.delete(summary_key(event_id))
        return web.json_response({"id": event_id, **event, "available": left})

    async def write_event(
        self, event_id: str, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        async with self.pool.connection() as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE events SET name = coalesce(%s, name), price = coalesce(%s, price),"
                    " capacity = coalesce(%s, capacity), version = version + 1, updated_at = now()"
                    " WHERE id = %s RETURNING name, capacity, price, version",
                    (fields.get("name"), fields.get("price"), fields.get("capacity"), event_id),
                )
                row = await cur.fetchone()
                if row is None:
                    raise HttpError(404, f"no event {event_id!r}")
                sold = await self.sold(conn, event_id)
        name, capacity, price, version = row
        event = {"name": name, "capacity": capacity, "price": float(price), "version": version}
        return event, capacity - sold

    async def reset_event(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        body = await read_json(request)
        capacity = int(body.get("capacity", self.default_capacity))
        price = Decimal(str(body.get("price", self.default_price)))
        name = str(body.get("name", event_id))
        await self.reset([(event_id, capacity, price, name)])
        return web.json_response({"status": "ok", "id": event_id, "capacity": capacity})

    async def reset_all(self, request: web.Request) -> web.Response:
        body = await read_json(request) if request.can_read_body else {}
        capacity = body.get("capacity")
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT id, capacity, price, name FROM events")
            rows = await cur.fetchall()
        events = {row[0]: row for row in rows}
        events.setdefault(
            self.default_event,
            (self.default_event, self.default_capacity, self.default_price, self.default_event),
        )
        await self.reset(
            [
                (eid, int(capacity) if capacity is not None else cap, price, name)
                for eid, cap, price, name in events.values()
            ],
            drop_all_orders=True,
        )
        return web.json_response({"status": "ok", "events": sorted(events)})

    async def reset(
        self, events: list[tuple[str, int, Decimal, str]], *, drop_all_orders: bool = False
    ) -> None:
        async with self.pool.connection() as conn:
            async with conn.transaction():
                if drop_all_orders:
                    await conn.execute("DELETE FROM orders")
                for event_id, capacity, price, name in events:
                    await conn.execute("DELETE FROM orders WHERE event_id = %s", (event_id,))
                    await conn.execute(
                        "INSERT INTO events (id, name, capacity, price) VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                        " capacity = excluded.capacity, price = excluded.price,"
                        " version = events.version + 1, updated_at = now()",
                        (event_id, name, capacity, price),
                    )
            summaries = {}
            for event_id, *_ in events:
                summaries[event_id] = await self.load_event(conn, event_id)
        async with self.cache.pipeline(transaction=True) as pipe:
            for event_id, capacity, *_ in events:
                pipe.set(count_key(event_id), capacity)
                pipe.set(summary_key(event_id), json.dumps(summaries[event_id]))
            await pipe.execute()

    async def get_order(self, request: web.Request) -> web.Response:
        try:
            order_id = uuid.UUID(request.match_info["order_id"])
        except ValueError:
            raise HttpError(404, "no such order") from None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT event_id, user_name, qty, created_at, status, charge_id, amount"
                " FROM orders WHERE id = %s",
                (order_id,),
            )
            row = await cur.fetchone()
        if row is None:
            raise HttpError(404, "no such order")
        event_id, user, qty, created_at, status, charge_id, amount = row
        payload = order_payload(order_id, event_id, user, qty, created_at)
        extra = {"status": status, "charge_id": charge_id, "amount": float(amount or 0)}
        return web.json_response({**payload, **extra})


def validate_update(fields: dict[str, Any]) -> None:
    name, price, capacity = fields.get("name"), fields.get("price"), fields.get("capacity")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 200):
        raise HttpError(400, "name must be a string of 1 to 200 characters")
    if price is not None and (
        isinstance(price, bool) or not isinstance(price, int | float) or not 0 <= price <= 1e6
    ):
        raise HttpError(400, "price must be a number from 0 to 1000000")
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= 10**6
    ):
        raise HttpError(400, "capacity must be an integer from 0 to 1000000")


def order_payload(
    order_id: Any, event_id: str, user: str, qty: int, created_at: Any
) -> dict[str, Any]:
    return {
        "order_id": str(order_id),
        "id": str(order_id),
        "event_id": event_id,
        "user": user,
        "qty": qty,
        "created_at": created_at.isoformat(),
    }


def order_response(
    order_id: Any, event_id: str, user: str, qty: int, created_at: Any
) -> web.Response:
    return web.json_response(order_payload(order_id, event_id, user, qty, created_at), status=201)


def printable_text(text: str) -> bool:
    """No control characters (NUL included) and no lone surrogates: what PostgreSQL text can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return text.isprintable()


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HttpError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except HttpError as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status >= 400:  # unknown routes and methods answer JSON too, like every other error
            return web.json_response({"error": exc.reason}, status=exc.status)
        raise
    except (psycopg.OperationalError, RedisConnectionError, RedisTimeoutError, OSError) as exc:
        return web.json_response(
            {"error": "dependency unavailable", "detail": repr(exc)}, status=503
        )
    except psycopg.Error as exc:
        return web.json_response({"error": "database error", "detail": str(exc)}, status=500)
    except RedisError as exc:
        return web.json_response({"error": "cache error", "detail": str(exc)}, status=500)


def build_app(env: dict[str, str]) -> web.Application:
    inventory = Inventory(env)
    app = web.Application(middlewares=[errors_as_json])
    app.on_startup.append(inventory.start)
    app.on_cleanup.append(inventory.stop)
    app.router.add_get("/health", inventory.health)
    app.router.add_post("/reset", inventory.reset_all)
    app.router.add_post("/events/{event_id}/reset", inventory.reset_event)
    app.router.add_get("/events/{event_id}", inventory.get_event)
    app.router.add_put("/events/{event_id}", inventory.update_event)
    app.router.add_post("/events/{event_id}/checkout", inventory.checkout)
    app.router.add_get("/orders/{order_id}", inventory.get_order)
    return app


def main() -> None:
    env = dict(os.environ)
    host, port = env.get("HOST", "127.0.0.1"), int(env.get("PORT", "8080"))
    app = build_app(env)
    print(f"inventory ({env.get('MODE', 'buggy')}) on http://{host}:{port}", file=sys.stderr)
    web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=2)


if __name__ == "__main__":
    main()
