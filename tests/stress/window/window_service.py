"""A service whose race window the test sets: check stock, wait `window_ms`, then sell.

POST /reset {capacity, window_ms} empties the shop. POST /buy checks that one
is left, sleeps `window_ms` (the window), then records the sale: two buys
inside one window both pass the check, and the shop oversells. With a long
window every request of a burst overlaps, so a burst of `capacity + 1`
oversells every time and a smaller one never can: the smallest reproducing
burst is known. GET /state gives {capacity, sold}.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"capacity": 1, "sold": 0, "window_ms": 0.0}
lock = threading.Lock()  # guards each read and write, never the window between them


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
        with lock:
            snapshot = dict(state)
        self._reply(200, {"ok": True} if self.path == "/health" else snapshot)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/reset":
            with lock:
                state.update(sold=0, capacity=int(body.get("capacity", 1)))
                state["window_ms"] = float(body.get("window_ms", 0))
            self._reply(200, state)
            return
        with lock:
            available = state["sold"] < state["capacity"]
            window_s = state["window_ms"] / 1000
        if not available:
            self._reply(409, {"error": "sold out"})
            return
        time.sleep(window_s)
        with lock:
            state["sold"] += 1
        self._reply(201, {"sold": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


if __name__ == "__main__":
    Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
