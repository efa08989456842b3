"""What the burst barrier's held-back byte costs: release spread, client and server side.

    .venv/bin/python bench/bench_burst_release.py [--n 100] [--bursts 20]

Each burst is N `POST /hit` requests with a small JSON body (`{"by": 1}`),
the request of issue 14's counter. Two servers run as separate processes
pinned to core 1 (the client is pinned to core 0 on a machine with two cores
or more), and each notes two times per request, CLOCK_MONOTONIC like the
client: when it has the request's *head* (where a server that dispatches on
the head starts the handler) and when it has the *complete* request:
- `h1`: a minimal asyncio HTTP/1.1 server;
- `h2`: a prior-knowledge h2c server on the `h2` state machine (head = the
  stream's HEADERS, complete = END_STREAM).

Methods, one after the other against the same server:
- heisen's HTTP/1.1 burst (`run_burst`), N connections;
- heisen's HTTP/2 burst (`run_burst(http2=True)`), N streams on one connection;
- a peer: `asyncio.gather` of the same N requests on an aiohttp session with
  N warm keep-alive connections.

Figures are medians over the bursts, in ms: the client's release window
(`release_spread_s`; for gather, the whole gather), the p10-p90 and max-min
of the server's complete times, and the time from the client's first
release write to the server's last complete request (what the server still
had to read and parse after the release). A head the server had before the
release is a request it could dispatch before the release (`early heads`,
mean per burst).

Measured 2026-12-01 on the 2-core box, **loaded** (load average 6-9 from
other test runs), 50 bursts per line, old = the barrier that held the last
body byte and primed HTTP/2 HEADERS, run from a copy of the tree before the
change, alternating with the new one:

| method     | barrier | client | done p10-p90 | done max-min | release→done | early heads |
|------------|---------|--------|--------------|--------------|--------------|-------------|
| heisen h1  | old     | 1.47 / 1.54 | 2.10 / 2.36 | 4.37 / 3.14 | 9.59 / 6.85 | 98.5 / 100 |
| heisen h1  | new     | 1.33 / 1.41 | 2.41 / 4.43 | 3.21 / 6.69 | 7.51 / 8.06 | 0 / 0 |
| aiohttp    | (peer)  | 46-87 (gather) | 7.2-13.2 | 8.0-14.6 | 32-66 | 0 |
| heisen h2  | old     | 0 (1 conn.) | 0 (one read) | 0 | 56.0 / 51.2 | 6 / 0 |
| heisen h2  | new     | 0 (1 conn.) | 0 (one read) | 0 | 67.6 / 56.0 | 0 / 0 |

The client's release loop costs nothing measurable (a 9-byte body rides
with the held byte); at the server, HTTP/1.1 requests complete over a
somewhat wider window (it now parses every head after the release), still
3-5x tighter than the aiohttp gather. The HTTP/2 figure is the Python h2
test server's own parse time under load, in both barriers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEADS: list[int] = []
COMPLETE: list[int] = []
BODY = b'{"by": 1}'


# -- servers (run in child processes) -----------------------------------------
class H1Server(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()
        self.need = -1  # body bytes still expected; -1 while reading a head
        self.path = ""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).decode("latin-1")
                del self.buf[: end + 4]
                self.path = head.split(" ", 2)[1]
                self.need = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        self.need = int(value)
                if self.path != "/_arrivals":
                    HEADS.append(time.monotonic_ns())
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = -1
            if self.path == "/_arrivals":
                body = json.dumps({"head": HEADS, "complete": COMPLETE}).encode()
                HEADS.clear()
                COMPLETE.clear()
            else:
                COMPLETE.append(time.monotonic_ns())
                body = b"ok"
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )


class H2Server(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        from h2.events import DataReceived, RequestReceived, StreamEnded

        events = self.conn.receive_data(data)
        now = time.monotonic_ns()  # h2 hands over every frame of this read at once
        for event in events:
            if isinstance(event, RequestReceived):
                HEADS.append(now)
            elif isinstance(event, StreamEnded):
                COMPLETE.append(now)
        for event in events:  # answers after the stamps, so their cost is not in them
            if isinstance(event, DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                headers = [(":status", "200"), ("content-length", "2")]
                self.conn.send_headers(event.stream_id, headers)
                self.conn.send_data(event.stream_id, b"ok", end_stream=True)
        self.transport.write(self.conn.data_to_send())


def serve(role: str, port: int, arrivals_port: int) -> None:
    """Serve `role` on `port`, and `GET /_arrivals` over HTTP/1.1 on `arrivals_port`."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol = H1Server if role == "h1" else H2Server
        await loop.create_server(H1Server, "127.0.0.1", arrivals_port)
        server = await loop.create_server(protocol, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    asyncio.run(main())


# -- clients -------------------------------------------------------------------
def requests(n: int) -> list[Any]:
    from heisen.stress._request import HttpRequest

    headers = (("Content-Type", "application/json"),)
    return [HttpRequest.post("/hit", BODY, headers) for _ in range(n)]


async def heisen_burst(port: int, n: int, http2: bool) -> tuple[float, int, int]:
    """(release window in ms, first release ns, early responses)."""
    from heisen.stress._burst import run_burst

    result = await run_burst("127.0.0.1", port, requests(n), http2=http2)
    assert all(r.status == 200 for r in result.records), "the burst lost requests"
    first = min(r.sent_ns for r in result.records if r.sent_ns is not None)
    early = getattr(result, "early_responses", 0)
    return result.release_spread_s * 1e3, first, early


async def aiohttp_gathers(
    port: int, arrivals_port: int, n: int, bursts: int
) -> list[tuple[float, int, int]]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/hit"
    out = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as session:

        async def one() -> None:
            async with session.post(url, data=BODY) as response:
                await response.read()

        await asyncio.gather(*(one() for _ in range(n)))  # warm n connections
        await asyncio.to_thread(arrivals, arrivals_port)
        for _ in range(bursts):
            start, first = time.perf_counter(), time.monotonic_ns()
            await asyncio.gather(*(one() for _ in range(n)))
            out.append(((time.perf_counter() - start) * 1e3, first, 0))
            SERVER.append(await asyncio.to_thread(arrivals, arrivals_port))
    return out


SERVER: list[dict[str, list[int]]] = []


def arrivals(port: int) -> dict[str, list[int]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_arrivals", timeout=10) as response:
        return dict(json.loads(response.read()))


def spread_ms(times: list[int]) -> tuple[float, float]:
    ordered = sorted(times)
    deciles = statistics.quantiles(ordered, n=10)
    return (deciles[-1] - deciles[0]) / 1e6, (ordered[-1] - ordered[0]) / 1e6


def measure(method: str, port: int, arrivals_port: int, n: int, bursts: int) -> dict[str, float]:
    SERVER.clear()
    arrivals(arrivals_port)
    if method == "aiohttp":
        client = asyncio.run(aiohttp_gathers(port, arrivals_port, n, bursts))
    else:
        client = []
        for _ in range(bursts):
            client.append(asyncio.run(heisen_burst(port, n, method == "heisen h2")))
            SERVER.append(arrivals(arrivals_port))
    done = [spread_ms(s["complete"]) for s in SERVER]
    pairs = list(zip(SERVER, client, strict=True))
    return {
        "client": statistics.median(c[0] for c in client),
        "done p10-p90": statistics.median(d[0] for d in done),
        "done max-min": statistics.median(d[1] for d in done),
        "release→done": statistics.median((max(s["complete"]) - c[1]) / 1e6 for s, c in pairs),
        "early heads": statistics.mean(sum(t < c[1] for t in s["head"]) for s, c in pairs),
        "early resp": statistics.mean(c[2] for c in client),
    }


def start(role: str, port: int, arrivals_port: int) -> subprocess.Popen[bytes]:
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 and _has("taskset") else []
    command = [sys.executable, __file__, "--serve", role, str(port), str(arrivals_port)]
    proc = subprocess.Popen([*pin, *command])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{role} server did not start")


def _has(tool: str) -> bool:
    from shutil import which

    return which(tool) is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--serve", nargs=3, metavar=("ROLE", "PORT", "ARRIVALS_PORT"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))
        return
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    sys.path.insert(0, str(ROOT / "src"))
    columns = ["client", "done p10-p90", "done max-min", "release→done", "early heads",
               "early resp"]  # fmt: skip
    print(f"{args.n} POST /hit per burst, {args.bursts} bursts per method; medians, ms")
    print(f"{'server':<8}{'method':<12}" + "".join(f"{c:>14}" for c in columns))
    for role, methods in (("h1", ["heisen h1", "aiohttp"]), ("h2", ["heisen h2"])):
        port, arrivals_port = free_port(), free_port()
        server = start(role, port, arrivals_port)
        try:
            for method in methods:
                row = measure(method, port, arrivals_port, args.n, args.bursts)
                print(f"{role:<8}{method:<12}" + "".join(f"{row[c]:>14.2f}" for c in columns))
        finally:
            server.terminate()
            server.wait(5)
    print("client: heisen = release loop (first to last released write); aiohttp = whole gather")
    print("done: when the server had each complete request; release→done: from the client's")
    print("first release write (aiohttp: the gather's start) to the server's last complete request")
    print("early heads: requests whose head the server had before the client's first release")
    print("early resp: heisen's BurstResult.early_responses (answers recorded before release)")


if __name__ == "__main__":
    main()
