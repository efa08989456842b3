"""The wallet's ledger (and, run as audit, its audit log): applies deposits, once per key.

POST /apply {"amount", "key"}: adds amount to the total, unless key (when not null) was
applied before. GET /total, POST /reset, POST /log (audit: counts), GET /health.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state: dict[str, object] = {"total": 0, "keys": set(), "logged": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()  # headers and body are two writes: no Nagle delay between them
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with lock:
            self._answer({"status": "ok", "total": state["total"], "logged": state["logged"]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with lock:
            keys = state["keys"]
            assert isinstance(keys, set)
            if self.path == "/apply":
                key = body.get("key")
                if key is None or key not in keys:
                    keys.add(key)
                    state["total"] = int(str(state["total"])) + int(body["amount"])
            elif self.path == "/reset":
                state.update(total=0, keys=set(), logged=0)
            elif self.path == "/log":
                state["logged"] = int(str(state["logged"])) + 1
            self._answer({"ok": True})


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # a burst connects all at once: no SYN dropped from the backlog
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
