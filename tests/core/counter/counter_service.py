"""A small real service with a lost-update race, for heisen's own tests.

POST /incr reads the counter, then writes it back plus one, in two
statements with no lock: concurrent increments overwrite each other. Every
increment is also logged, so `n == logged` holds only without a race.
MODE=fixed does the increment in one atomic UPDATE.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

DSN = os.environ["DATABASE_URL"]
FIXED = os.environ.get("MODE") == "fixed"


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

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, {"ok": True})
            return
        with psycopg.connect(DSN, autocommit=True) as conn:
            n = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()[0]
        self._reply(200, {"n": n})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with psycopg.connect(DSN, autocommit=True) as conn:
            if self.path == "/reset":
                conn.execute("UPDATE counter SET n = 0 WHERE id = 1")
                conn.execute("DELETE FROM incr_log")
                self._reply(200, {"n": 0})
                return
            if FIXED:
                n = conn.execute(
                    "UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n"
                ).fetchone()[0]
            else:
                n = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()[0] + 1
                conn.execute("UPDATE counter SET n = %s WHERE id = 1", (n,))
            conn.execute("INSERT INTO incr_log DEFAULT VALUES")
        self._reply(200, {"n": n})


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
