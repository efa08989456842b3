"""A small real service that acknowledges writes, for the chaos tests.

POST /write {"id": ...} stores the id in PostgreSQL and answers 201 {"id": ...}.
MODE=safe commits before it answers. MODE=lossy answers first and commits
later: writes wait in memory and a background thread flushes them every
FLUSH_S seconds (a write-behind cache), so a replica killed between the
acknowledgement and the flush loses writes it acknowledged.
GET /count reads through the database link (its latency shows the link's).
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

DSN = os.environ["DATABASE_URL"]
LOSSY = os.environ.get("MODE") == "lossy"
FLUSH_S = float(os.environ.get("FLUSH_S", "0.5"))
pending: list[str] = []
lock = threading.Lock()


def flush_forever() -> None:
    while True:
        time.sleep(FLUSH_S)
        with lock:
            batch = list(pending)
            pending.clear()
        if batch:
            with psycopg.connect(DSN, autocommit=True) as conn:
                for value in batch:
                    conn.execute(
                        "INSERT INTO ledger (id) VALUES (%s) ON CONFLICT DO NOTHING", (value,)
                    )


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
            n = conn.execute("SELECT count(*) FROM ledger").fetchone()[0]
        self._reply(200, {"count": n})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/reset":
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute("DELETE FROM ledger")
            self._reply(200, {})
            return
        value = str(payload["id"])
        if LOSSY:
            with lock:
                pending.append(value)
        else:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute("INSERT INTO ledger (id) VALUES (%s) ON CONFLICT DO NOTHING", (value,))
        self._reply(201, {"id": value})


if __name__ == "__main__":
    if LOSSY:
        threading.Thread(target=flush_forever, daemon=True).start()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
