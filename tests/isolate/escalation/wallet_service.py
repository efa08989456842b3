"""A wallet whose deposits are applied twice only when its ledger is slower than its client timeout.

    PORT=8080 LEDGER_URL=http://127.0.0.1:8091 AUDIT_URL=http://127.0.0.1:8092 python wallet_service.py

POST /deposit: logs the deposit to audit (best effort), then applies it at the ledger with a
client timeout of TIMEOUT_MS (default 150). On that timeout it tries once more with a long
timeout: with MODE=buggy it sends no idempotency key, so when the first call did reach the
ledger (it was only slow to answer) the deposit is applied twice; with MODE=fixed both calls
carry the same key and the ledger applies it once. Nothing else ever retries: with a ledger
faster than TIMEOUT_MS every deposit is applied exactly once.

GET /total -> {"total": what the ledger holds, "acknowledged": deposits answered 200}
POST /reset, GET /health.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LEDGER = os.environ["LEDGER_URL"].rstrip("/")
AUDIT = os.environ["AUDIT_URL"].rstrip("/")
TIMEOUT_S = float(os.environ.get("TIMEOUT_MS", "150")) / 1000
FIXED = os.environ.get("MODE", "buggy") == "fixed"

lock = threading.Lock()
acknowledged = 0


def call(url: str, body: dict[str, object] | None, timeout: float) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        result: dict[str, object] = json.loads(answer.read())
        return result


def deposit() -> None:
    global acknowledged
    try:
        call(f"{AUDIT}/log", {"event": "deposit"}, 5.0)
    except OSError:
        pass  # the audit log is best effort
    key = str(uuid.uuid4())
    try:
        call(f"{LEDGER}/apply", {"amount": 1, "key": key}, TIMEOUT_S)
    except OSError:  # a timeout: the ledger may have applied it already
        call(f"{LEDGER}/apply", {"amount": 1, "key": key if FIXED else None}, 10.0)
    with lock:
        acknowledged += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()  # headers and body are two writes: no Nagle delay between them
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"status": "ok"})
        elif self.path == "/total":
            total = call(f"{LEDGER}/total", None, 10.0)["total"]
            self._answer(200, {"total": total, "acknowledged": acknowledged})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        global acknowledged
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if self.path == "/deposit":
                deposit()
                self._answer(200, {"ok": True})
            elif self.path == "/reset":
                call(f"{LEDGER}/reset", {}, 10.0)
                with lock:
                    acknowledged = 0
                self._answer(200, {"ok": True})
            else:
                self._answer(404, {"error": "not found"})
        except (OSError, urllib.error.URLError) as exc:
            self._answer(502, {"error": str(exc)})


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # a burst connects all at once: no SYN dropped from the backlog
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
