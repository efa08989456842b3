"""A small register service with a stale read, for the stress phase tests.

PUT /register {"value": v} writes v to PostgreSQL and logs the write in
`writes` (returns {"id": ..., "value": v}); GET /register returns the value.
MODE=buggy: reads come from a per-process cache that is refreshed at most
every CACHE_MS (a write only clears its own process's cache), so with two
replicas a read can return a value older than a completed write: a stale,
non-linearizable read. LOSE_EVERY=n (buggy mode) also rolls back the log of
every nth write after its id was returned: an acknowledged write is lost.
MODE=fixed reads PostgreSQL every time and loses nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

DSN = os.environ["DATABASE_URL"]
BUGGY = os.environ.get("MODE") == "buggy"
CACHE_S = float(os.environ.get("CACHE_MS", "300")) / 1000
LOSE_EVERY = int(os.environ.get("LOSE_EVERY", "0"))
LOCK = threading.Lock()
CACHE: dict[str, object] = {}
WRITES = [0]


def read_value() -> object:
    with psycopg.connect(DSN, autocommit=True) as conn:
        return conn.execute("SELECT value FROM register WHERE id = 1").fetchone()[0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, object]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        return json.loads(raw) if raw else {}

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, {"ok": True})
            return
        if not BUGGY:
            self._reply(200, {"value": read_value()})
            return
        with LOCK:
            fresh = time.monotonic() - float(CACHE.get("at", 0.0)) < CACHE_S  # type: ignore[arg-type]
            value = CACHE.get("value") if fresh else None
        if value is None:
            value = read_value()
            with LOCK:
                CACHE.update(value=value, at=time.monotonic())
        self._reply(200, {"value": value})

    def do_PUT(self) -> None:
        value = int(self._body()["value"])  # type: ignore[call-overload]
        with psycopg.connect(DSN) as conn:
            conn.execute("UPDATE register SET value = %s WHERE id = 1", (value,))
            conn.commit()
            write_id = conn.execute(
                "INSERT INTO writes (value) VALUES (%s) RETURNING id", (value,)
            ).fetchone()[0]
            with LOCK:
                WRITES[0] += 1
                lose = BUGGY and LOSE_EVERY > 0 and WRITES[0] % LOSE_EVERY == 0
                CACHE.clear()
            if lose:
                conn.rollback()
            else:
                conn.commit()
        self._reply(200, {"id": write_id, "value": value})

    def do_POST(self) -> None:
        self._body()
        if self.path == "/reset":
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute("UPDATE register SET value = 0 WHERE id = 1")
                conn.execute("DELETE FROM writes")
            with LOCK:
                CACHE.clear()
            self._reply(200, {"value": 0})
            return
        self._reply(404, {"error": "not found"})


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
