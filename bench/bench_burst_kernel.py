"""How tightly a burst lands at the kernel: heisen's burst engine beside naive peers.

    .venv/bin/python bench/bench_burst_kernel.py [--sizes 2 20 200 1000] [--rounds 7]

One loopback server (`_kernel_arrivals.py`, a child process pinned to core 1;
this client is pinned to core 0 on a machine with two cores or more) notes
the kernel receive time (SO_TIMESTAMPNS, CLOCK_REALTIME) of the segment that
carried each request's final byte; it speaks HTTP/1.1 and prior-knowledge
h2c. Each burst is N `GET /`, sent by one of:

- `heisen 1t`: `run_burst` over HTTP/1.1, N connections (connect, prime all
  but the head's last byte, settle, release every last byte from one thread);
- `heisen 2t`: the same, released by two threads, one per core (the client
  is allowed both cores for the call, so its second thread shares the
  server's core: what a two-core machine offers);
- `heisen h2`: `run_burst(http2=True)`, h2c single-packet: 100 streams per
  connection, each connection's frames in one write;
- `aio cold`: `asyncio.gather` of N `session.get` on a new aiohttp session
  (`TCPConnector(limit=0, force_close=False)`), connections opened inside
  the gather;
- `aio warm`: the same with the N connections opened and warmed (one request
  each) before the burst;
- `httpx cold`: `asyncio.gather` of N `client.get` on a new
  `httpx.AsyncClient` (`max_connections=N`);
- `heisen tls`, `heisen h2 tls`: `heisen 1t` and `heisen h2` over TLS (ALPN
  http/1.1 and h2; a certificate made for the run by trustme), at the same
  server decrypting on memory buffers;
- `raw loop`: N blocking sockets connected, all but the last byte sent,
  20 ms of settle, then `for s in socks: s.send(last)`;
- `httpx h2`: `asyncio.gather` of N `client.get` on an `httpx.AsyncClient`
  speaking h2c (`http1=False, http2=True`), its streams on one connection.

Rounds are interleaved (each round runs every size and every client, the
clients' order rotated round by round). Figures are the median over the
rounds (httpx at N=1000 gets `--slow-rounds`, 1 by default: one such burst
takes about 45 s), in ms: p10-p90 and max-min of the kernel stamps
(inclusive deciles, so that with N=2 p10-p90 is 0.8 x max-min);
`start→last`, from the client's call (CLOCK_REALTIME) to the last kernel
stamp; `e2e`, the client's whole call, responses read; `release`, heisen's
`release_spread_s` and the raw loop's own send loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _kernel_arrivals import KernelArrivalServer  # beside this file: run it as a script

ROOT = Path(__file__).resolve().parents[1]
SETTLE_S = 0.02  # the raw loop waits as long as run_burst does for a large burst


@dataclass(frozen=True)
class Call:
    """What a client knows of one burst: when it began (ns, CLOCK_REALTIME), how long, its loop."""

    start_ns: int
    e2e_ms: float
    release_ms: float | None = None


Client = Callable[[int, int], Awaitable[Call]]


# -- clients -------------------------------------------------------------------
async def heisen(
    port: int, n: int, *, threads: int = 1, http2: bool = False, tls: bool = False
) -> Call:
    from heisen.stress import HttpRequest, run_burst
    from heisen.stress._tls import TlsClient

    requests = [HttpRequest.get("/") for _ in range(n)]
    client_tls = (
        TlsClient.make(TLS_SERVER.ca_path, alpn=("h2",) if http2 else ("http/1.1",))
        if tls
        else None
    )
    pinned = os.sched_getaffinity(0)
    if threads > 1:  # the second release thread needs a second core: the server's
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    try:
        start_ns, start = time.time_ns(), time.perf_counter()
        result = await run_burst(
            "127.0.0.1", port, requests, http2=http2, release_threads=threads, tls=client_tls
        )
        e2e = (time.perf_counter() - start) * 1e3
    finally:
        os.sched_setaffinity(0, pinned)
    lost = [r for r in result.records if r.status != 200]
    assert not lost, f"heisen's burst lost {len(lost)} requests: {lost[0].error}"
    return Call(start_ns, e2e, result.release_spread_s * 1e3)


async def heisen_one_thread(port: int, n: int) -> Call:
    return await heisen(port, n, threads=1)


async def heisen_two_threads(port: int, n: int) -> Call:
    return await heisen(port, n, threads=2)


async def heisen_h2(port: int, n: int) -> Call:
    return await heisen(port, n, http2=True)


async def heisen_tls(port: int, n: int) -> Call:
    return await heisen(port, n, tls=True)


async def heisen_h2_tls(port: int, n: int) -> Call:
    return await heisen(port, n, http2=True, tls=True)


async def aiohttp_gather(port: int, n: int, warm: bool) -> Call:
    import aiohttp

    url = f"http://127.0.0.1:{port}/"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> int:
            async with session.get(url) as response:
                await response.read()
                return response.status

        if warm:
            await asyncio.gather(*(one() for _ in range(n)))
            await asyncio.to_thread(SERVER.arrivals)  # drop the warm-up's stamps
        start_ns, start = time.time_ns(), time.perf_counter()
        statuses = await asyncio.gather(*(one() for _ in range(n)))
        e2e = (time.perf_counter() - start) * 1e3
    assert statuses == [200] * n, "the aiohttp gather lost requests"
    return Call(start_ns, e2e)


async def aiohttp_cold(port: int, n: int) -> Call:
    return await aiohttp_gather(port, n, warm=False)


async def aiohttp_warm(port: int, n: int) -> Call:
    return await aiohttp_gather(port, n, warm=True)


async def httpx_cold(port: int, n: int) -> Call:
    import httpx

    url = f"http://127.0.0.1:{port}/"
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits) as client:
        start_ns, start = time.time_ns(), time.perf_counter()
        responses = await asyncio.gather(*(client.get(url) for _ in range(n)))
        e2e = (time.perf_counter() - start) * 1e3
    assert all(r.status_code == 200 for r in responses), "the httpx gather lost requests"
    return Call(start_ns, e2e)


async def httpx_h2(port: int, n: int) -> Call:
    import httpx

    url = f"http://127.0.0.1:{port}/"
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        start_ns, start = time.time_ns(), time.perf_counter()
        responses = await asyncio.gather(*(client.get(url) for _ in range(n)))
        e2e = (time.perf_counter() - start) * 1e3
    assert all(r.status_code == 200 for r in responses), "the httpx h2 gather lost requests"
    return Call(start_ns, e2e)


async def raw_loop(port: int, n: int) -> Call:
    """Blocking sockets on purpose: nothing between the last-byte sends but the loop itself."""
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
    start_ns, start = time.time_ns(), time.perf_counter()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    try:
        for sock in socks:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(request[:-1])
        time.sleep(SETTLE_S)
        last = request[-1:]
        loop_start = time.perf_counter()
        for sock in socks:
            sock.send(last)
        release = (time.perf_counter() - loop_start) * 1e3
        for sock in socks:
            answer = b""
            while not answer.endswith(b"\r\n\r\nok"):
                chunk = sock.recv(4096)
                assert chunk, "the raw loop lost a response"
                answer += chunk
        e2e = (time.perf_counter() - start) * 1e3
    finally:
        for sock in socks:
            sock.close()
    return Call(start_ns, e2e, release)


CLIENTS: dict[str, Client] = {
    "heisen 1t": heisen_one_thread,
    "heisen 2t": heisen_two_threads,
    "heisen h2": heisen_h2,
    "heisen tls": heisen_tls,
    "heisen h2 tls": heisen_h2_tls,
    "aio cold": aiohttp_cold,
    "aio warm": aiohttp_warm,
    "httpx cold": httpx_cold,
    "raw loop": raw_loop,
    "httpx h2": httpx_h2,
}


# -- measure -------------------------------------------------------------------
@dataclass(frozen=True)
class Round:
    p10_p90_ms: float
    max_min_ms: float
    start_to_last_ms: float
    e2e_ms: float
    release_ms: float | None


def spread_ms(stamps: list[int]) -> tuple[float, float]:
    """(p10-p90, max-min) in ms; inclusive deciles stay inside the stamps for small N."""
    ordered = sorted(stamps)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return (deciles[-1] - deciles[0]) / 1e6, (ordered[-1] - ordered[0]) / 1e6


async def one_round(name: str, n: int) -> Round:
    server = TLS_SERVER if name.endswith("tls") else SERVER
    await asyncio.to_thread(server.arrivals)
    gc.collect()
    call = await CLIENTS[name](server.port, n)
    stamps, unstamped = await asyncio.to_thread(server.arrivals)
    if unstamped or len(stamps) != n:
        raise SystemExit(f"{n} requests sent, {len(stamps)} stamped, {unstamped} without a stamp")
    p1090, maxmin = spread_ms(stamps)
    return Round(p1090, maxmin, (max(stamps) - call.start_ns) / 1e6, call.e2e_ms, call.release_ms)


SLOW = ("httpx cold", 1000)  # about 45 s a burst on 2 cores: it gets `--slow-rounds` rounds


async def run(
    sizes: list[int], rounds: int, names: list[str], slow_rounds: int
) -> dict[tuple[str, int], list[Round]]:
    results: dict[tuple[str, int], list[Round]] = {(c, n): [] for c in names for n in sizes}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in sizes:
            for name in order:
                if name == SLOW[0] and n >= SLOW[1] and r >= slow_rounds:
                    continue
                results[name, n].append(await one_round(name, n))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
    return results


# -- report --------------------------------------------------------------------
ROWS: list[tuple[str, Callable[[Round], float | None]]] = [
    ("p10-p90", lambda r: r.p10_p90_ms),
    ("max-min", lambda r: r.max_min_ms),
    ("start→last", lambda r: r.start_to_last_ms),
    ("e2e", lambda r: r.e2e_ms),
    ("release", lambda r: r.release_ms),
]


def table(results: dict[tuple[str, int], list[Round]], sizes: list[int], names: list[str]) -> str:
    lines = [f"{'N':>5}  {'ms (median)':<12}" + "".join(f"{name:>12}" for name in names)]
    for n in sizes:
        for label, pick in ROWS:
            cells = []
            for name in names:
                values = [v for v in map(pick, results[name, n]) if v is not None]
                cells.append(f"{statistics.median(values):>12.2f}" if values else f"{'-':>12}")
            lines.append(f"{n if label == 'p10-p90' else '':>5}  {label:<12}" + "".join(cells))
        lines.append("")
    return "\n".join(lines)


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


SERVER: KernelArrivalServer
TLS_SERVER: KernelArrivalServer  # the same server over TLS, for the clients named "... tls"


def main() -> None:
    global SERVER, TLS_SERVER
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 20, 200, 1000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slow-rounds", type=int, default=1, help="httpx rounds at N>=1000")
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=list(CLIENTS))
    args = parser.parse_args()
    raise_fd_limit(2 * max(args.sizes) + 256)  # inherited by the server process
    two_cores = (os.cpu_count() or 1) > 1
    if two_cores:
        os.sched_setaffinity(0, {0})
    sys.path.insert(0, str(ROOT / "src"))
    load_before = os.getloadavg()
    began = datetime.now(UTC)
    server_cpu = 1 if two_cores else None
    with (
        KernelArrivalServer(cpu=server_cpu) as server,
        KernelArrivalServer(cpu=server_cpu, tls=True) as tls_server,
    ):
        SERVER, TLS_SERVER = server, tls_server
        results = asyncio.run(run(args.sizes, args.rounds, args.clients, args.slow_rounds))
    load_after = os.getloadavg()
    took = (datetime.now(UTC) - began).total_seconds()
    print(f"{began:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {args.rounds} rounds, {took:.0f} s")
    print("load average before: " + " ".join(f"{x:.2f}" for x in load_before))
    print("load average after:  " + " ".join(f"{x:.2f}" for x in load_after))
    print("kernel receive time (SO_TIMESTAMPNS) of each request's final byte; medians over rounds")
    print(table(results, args.sizes, args.clients))
    print("start→last: client call start to the last kernel stamp; e2e: whole client call;")
    print("release: heisen's release_spread_s, the raw loop's send loop")
    if SLOW[0] in args.clients and max(args.sizes) >= SLOW[1]:
        print(f"{SLOW[0]} at N>={SLOW[1]}: {args.slow_rounds} round(s) only (about 45 s each)")


if __name__ == "__main__":
    main()
