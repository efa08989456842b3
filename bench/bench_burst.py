"""Burst tightness as the server sees it: heisen's last-byte burst vs gather of httpx/aiohttp.

    .venv/bin/python bench/bench_burst.py [--n 200] [--bursts 5]

Two loopback servers run as separate processes pinned to core 1 (the client
is pinned to core 0 when the machine has two cores or more):
- an asyncio server that notes `time.monotonic_ns()` when each request is complete;
- a raw-socket server that reads with `recvmsg` and notes the kernel receive
  timestamp (SO_TIMESTAMPNS) of the segment that completed each request.
For each method, each burst sends N GET requests over N pre-opened connections;
the figure is the median over the bursts of the arrival spread (p10-p90 and
max-min, ms). heisen's own client-side release window is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ARRIVALS: list[int] = []
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# -- servers (run in child processes) -----------------------------------------
class ArrivalServer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            if head.startswith(b"GET /_arrivals"):
                body = json.dumps(ARRIVALS).encode()
                ARRIVALS.clear()
                self.transport.write(  # type: ignore[attr-defined]
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            else:
                ARRIVALS.append(time.monotonic_ns())
                self.transport.write(OK)  # type: ignore[attr-defined]


def serve_arrivals(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            ArrivalServer, "127.0.0.1", port, backlog=4096
        )
        await server.serve_forever()

    asyncio.run(main())


def serve_kernel_ts(port: int) -> None:
    """Blocking selector loop; the kernel stamps each received segment (CLOCK_REALTIME)."""
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    buffers: dict[socket.socket, bytes] = {}
    cmsg_space = socket.CMSG_SPACE(16)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                conn, _ = listener.accept()
                conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                conn.setblocking(False)
                buffers[conn] = b""
                sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                data, ancdata, _, _ = sock.recvmsg(65536, cmsg_space)
            except OSError:
                data, ancdata = b"", []
            if not data:
                sel.unregister(sock)
                buffers.pop(sock, None)
                sock.close()
                continue
            stamp = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", payload[:16])
                    stamp = sec * 1_000_000_000 + nsec
            buf = buffers[sock] + data
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                if head.startswith(b"GET /_arrivals"):
                    body = json.dumps(ARRIVALS).encode()
                    ARRIVALS.clear()
                    sock.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                else:
                    ARRIVALS.append(stamp or time.time_ns())
                    sock.sendall(OK)
            buffers[sock] = buf


# -- clients -------------------------------------------------------------------
async def burst_heisen(port: int, n: int) -> float:
    from heisen.stress._burst import run_burst
    from heisen.stress._request import HttpRequest

    result = await run_burst("127.0.0.1", port, [HttpRequest.get("/") for _ in range(n)])
    assert all(r.status == 200 for r in result.records), "heisen burst lost requests"
    return result.release_spread_s * 1e3


async def burst_gather(kind: str, port: int, n: int, bursts: int) -> list[float]:
    url = f"http://127.0.0.1:{port}/"
    durations = []
    if kind == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(limits=limits) as client:
            await asyncio.gather(*(client.get(url) for _ in range(n)))  # warm-up
            fetch(port)
            for _ in range(bursts):
                start = time.perf_counter()
                await asyncio.gather(*(client.get(url) for _ in range(n)))
                durations.append((time.perf_counter() - start) * 1e3)
                yield_spread(port)
    else:
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as session:

            async def one() -> None:
                async with session.get(url) as response:
                    await response.read()

            await asyncio.gather(*(one() for _ in range(n)))
            fetch(port)
            for _ in range(bursts):
                start = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(n)))
                durations.append((time.perf_counter() - start) * 1e3)
                yield_spread(port)
    return durations


SPREADS: list[tuple[float, float]] = []


def fetch(port: int) -> list[int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_arrivals", timeout=10) as response:
        return list(json.loads(response.read()))


def yield_spread(port: int) -> None:
    times = sorted(fetch(port))
    if len(times) >= 10:
        deciles = statistics.quantiles(times, n=10)
        SPREADS.append(((deciles[-1] - deciles[0]) / 1e6, (times[-1] - times[0]) / 1e6))


def measure(method: str, port: int, n: int, bursts: int) -> tuple[float, float, float]:
    SPREADS.clear()
    client_ms: list[float] = []
    if method == "heisen":
        fetch(port)
        for _ in range(bursts):
            client_ms.append(asyncio.run(burst_heisen(port, n)))
            yield_spread(port)
    else:
        client_ms = asyncio.run(burst_gather(method, port, n, bursts))
    return (
        statistics.median(s[0] for s in SPREADS),
        statistics.median(s[1] for s in SPREADS),
        statistics.median(client_ms),
    )


def start(role: str, port: int) -> subprocess.Popen[bytes]:
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 and _has("taskset") else []
    proc = subprocess.Popen([*pin, sys.executable, __file__, "--serve", role, str(port)])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--serve", nargs=2, metavar=("ROLE", "PORT"))
    args = parser.parse_args()
    if args.serve:
        role, port = args.serve[0], int(args.serve[1])
        (serve_arrivals if role == "arrivals" else serve_kernel_ts)(port)
        return
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    sys.path.insert(0, str(ROOT / "src"))
    methods = ["heisen"]
    for lib in ("httpx", "aiohttp"):
        try:
            __import__(lib)
            methods.append(lib)
        except ImportError:
            print(f"({lib} not installed: skipping its gather)")
    print(f"{args.n} requests per burst, {args.bursts} bursts per method; median over bursts, ms")
    print(f"{'server layer':<28}{'method':<10}{'p10-p90':>10}{'max-min':>10}{'client':>10}")
    for role, label in (
        ("arrivals", "asyncio request complete"),
        ("kernel", "kernel SO_TIMESTAMPNS"),
    ):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        server = start(role, port)
        try:
            for method in methods:
                p1090, maxmin, client = measure(method, port, args.n, args.bursts)
                print(f"{label:<28}{method:<10}{p1090:>10.2f}{maxmin:>10.2f}{client:>10.2f}")
        finally:
            server.terminate()
            server.wait(5)
    print("client: heisen = release loop (first to last final byte); gather = whole gather")


if __name__ == "__main__":
    main()
