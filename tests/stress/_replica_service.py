"""A service replica that says which replica it is, with a rate limiter of its own.

    PORT=8000 REPLICA=1 LIMIT=3 python _replica_service.py

HTTP/1.1 and prior-knowledge h2c on one port (decided by the first bytes).
Routes: GET /health; POST /who answers {"replica": REPLICA}; POST
/take?t=... answers 200 {"replica": REPLICA} for the first LIMIT takes of
that query and 429 after them (a test gives each trial its own query). Each
replica enforces LIMIT alone, so the service as a whole admits LIMIT per
replica: correct per replica, too many per key.
"""

from __future__ import annotations

import asyncio
import json
import os

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REPLICA = int(os.environ["REPLICA"])
LIMIT = int(os.environ.get("LIMIT", "3"))
TAKEN: dict[str, int] = {}


def route(method: str, path: str) -> tuple[int, bytes]:
    mine = json.dumps({"replica": REPLICA}).encode()
    if path == "/health":
        return 200, mine
    if method == "POST" and path == "/who":
        return 200, mine
    if method == "POST" and path.startswith("/take"):
        if TAKEN.get(path, 0) < LIMIT:
            TAKEN[path] = TAKEN.get(path, 0) + 1
            return 200, mine
        return 429, mine
    return 404, mine


class Server(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()
        self.skip = 0
        self.h2: object | None = None
        self.decided = False

    def data_received(self, data: bytes) -> None:
        if not self.decided:
            self.buf += data
            if len(self.buf) < len(H2_PREFACE) and H2_PREFACE.startswith(bytes(self.buf)):
                return
            self.decided = True
            data, self.buf = bytes(self.buf), bytearray()
            if data.startswith(H2_PREFACE):
                self._start_h2()
        if self.h2 is not None:
            self._h2_received(data)
        else:
            self._h1_received(data)

    def _h1_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.skip:
                take = min(self.skip, len(self.buf))
                del self.buf[:take]
                self.skip -= take
                if self.skip:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    self.skip = int(value)
            status, body = route(method, path)
            self.transport.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )

    def _start_h2(self) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        self.transport.write(conn.data_to_send())
        self.h2 = conn

    def _h2_received(self, data: bytes) -> None:
        from h2.connection import H2Connection
        from h2.events import DataReceived, RequestReceived

        conn = self.h2
        assert isinstance(conn, H2Connection)
        for event in conn.receive_data(data):
            if isinstance(event, RequestReceived):
                headers = dict(event.headers)
                status, body = route(str(headers[":method"]), str(headers[":path"]))
                reply = [
                    (":status", str(status)),
                    ("content-type", "application/json"),
                    ("content-length", str(len(body))),
                ]
                conn.send_headers(event.stream_id, reply)
                conn.send_data(event.stream_id, body, end_stream=True)
            elif isinstance(event, DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.transport.write(conn.data_to_send())


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, "127.0.0.1", int(os.environ["PORT"]), backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
