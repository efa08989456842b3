"""What heisen's TCP proxy adds to a link when no toxic applies: latency and throughput.

    .venv/bin/python bench/bench_proxy.py [--pings 5000] [--megabytes 256] [--loop both]
    .venv/bin/python bench/bench_proxy.py --tap [--ops 6000] [--rounds 40] [--protocols ...]

`--tap` measures the protocol tap instead, against real Redis, PostgreSQL and
HTTP servers: see bench_tap.py.

Latency: a client sends 64 bytes and waits for them to be echoed, one
request at a time over one connection, first straight to the echo server,
then through the proxy daemon (a real `heisen.system._proxyd` process). The
added latency is the difference of the two at p50 and p99.

Throughput: the client streams `--megabytes` to a sink server, straight and
through the proxy, and divides by the time until the sink has seen it all.

The daemon is pinned to the last CPU, the client and servers to the first,
so the proxy's event loop does not share a core with what measures it.

`--loop asyncio|uvloop|both` picks the daemon's event loop (an asyncio
policy set before the daemon's module runs). With `both` (the default) one daemon runs on each, and
`--rounds` turns alternate between them (and the direct link), so a change
of the machine's load touches both alike.
Toxiproxy's own claim, for comparison: "<100µs when no toxics", ~1000 MB/s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from heisen.system import ProxyControl, free_port, wait_for_port

# Under uvloop the daemon reads a client's first bytes before its link to the upstream
# is up, and drops the connection (a `pause_reading()` in `connection_made` that uvloop
# undoes): the client waits this long before it speaks, whichever the loop.
LINK_SETTLE_S = 0.05

# The child's event loop, chosen here rather than through HEISEN_EVENT_LOOP so the
# comparison does not depend on which call sites have switched to heisen._eventloop.
_LOOP_BOOT = r"""
import asyncio, runpy, sys
loop, module = sys.argv.pop(1), sys.argv.pop(1)
if loop == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

_SERVER = r"""
import socket, sys, threading
mode, port = sys.argv[1], int(sys.argv[2])
listener = socket.create_server(("127.0.0.1", port), backlog=64)
def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        if mode == "echo":
            while data := conn.recv(65536):
                conn.sendall(data)
        else:
            total = 0
            while data := conn.recv(1 << 20):
                total += len(data)
            conn.sendall(str(total).encode())
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def start_server(mode: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", _SERVER, mode, str(port)])
    if not wait_for_port("127.0.0.1", port, 10):
        process.kill()
        raise SystemExit(f"the {mode} server did not start")
    return process, port


def boot(loop: str, module: str) -> list[str]:
    """The command that runs `module` as `python -m` would, on `loop`."""
    return [sys.executable, "-c", _LOOP_BOOT, loop, module]


def start_daemon(loop: str, log: Path) -> tuple[subprocess.Popen[bytes], ProxyControl]:
    """A `heisen.system._proxyd` process on `loop`, its API answering."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*boot(loop, "heisen.system._proxyd"), "--api-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if not wait_for_port("127.0.0.1", port, 15):
        process.kill()
        raise SystemExit(f"the proxy daemon on {loop} did not start; see {log}")
    return process, ProxyControl(f"http://127.0.0.1:{port}", timeout_s=5.0)


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ping_pong(port: int, count: int) -> np.ndarray:
    payload = b"x" * 64
    samples = np.empty(count)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(LINK_SETTLE_S)
        for _ in range(200):  # warm up
            sock.sendall(payload)
            sock.recv(64)
        for i in range(count):
            start = time.perf_counter_ns()
            sock.sendall(payload)
            got = sock.recv(64)
            while len(got) < 64:
                got += sock.recv(64 - len(got))
            samples[i] = time.perf_counter_ns() - start
    return samples / 1000.0  # µs


def stream(port: int, megabytes: int) -> float:
    chunk = os.urandom(256 * 1024)
    total = megabytes * (1 << 20)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        time.sleep(LINK_SETTLE_S)
        start = time.perf_counter()
        sent = 0
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
        sock.shutdown(socket.SHUT_WR)
        seen = int(sock.recv(64))
        elapsed = time.perf_counter() - start
    assert seen == total, (seen, total)
    return total / (1 << 20) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pings", type=int, default=5000)
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--tap", action="store_true", help="measure the protocol tap instead")
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    parser.add_argument(
        "--rounds-proxy", type=int, default=5, help="turns over direct and each daemon"
    )
    parser.add_argument("--ops", type=int, default=6000, help="--tap: requests per way")
    parser.add_argument("--rounds", type=int, default=40, help="--tap: turns of the three ways")
    parser.add_argument("--protocols", default="redis,postgres,http", help="--tap: which ones")
    args = parser.parse_args()
    if args.tap:
        import bench_tap  # next to this file, so on sys.path when run as a script

        bench_tap.main(args.ops, args.rounds, args.protocols.split(","))
        return
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})  # children inherit this
    loops = ("asyncio", "uvloop") if args.loop == "both" else (args.loop,)
    load_before = Path("/proc/loadavg").read_text().strip()
    echo, echo_port = start_server("echo")
    sink, sink_port = start_server("sink")
    pings: dict[str, list[np.ndarray]] = {name: [] for name in ("direct", *loops)}
    rates: dict[str, list[float]] = {name: [] for name in ("direct", *loops)}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        routes = {"direct": (echo_port, sink_port)}
        for loop in loops:
            daemon, control = start_daemon(loop, Path(tmp) / f"proxyd-{loop}.log")
            stack.callback(stop_daemon, daemon)
            stack.callback(control.close)
            os.sched_setaffinity(daemon.pid, {cpus[-1]})
            _, echo_via = control.create("echo", [f"127.0.0.1:{echo_port}"])
            _, sink_via = control.create("sink", [f"127.0.0.1:{sink_port}"])
            routes[loop] = (echo_via, sink_via)
        try:
            for _ in range(args.rounds_proxy):
                for name, (echo_to, sink_to) in routes.items():
                    pings[name].append(ping_pong(echo_to, args.pings // args.rounds_proxy))
                    rates[name].append(stream(sink_to, args.megabytes // args.rounds_proxy))
        finally:
            for server in (echo, sink):
                server.kill()
                server.wait()

    print(
        f"heisen TCP proxy, pass-through (no toxics); CPUs {cpus}, proxy pinned to CPU {cpus[-1]}"
    )
    print(f"load average before: {load_before}; after: {Path('/proc/loadavg').read_text().strip()}")
    print(f"ping-pong, 64 B, {args.pings} round trips over one connection (µs):")
    print(f"  {'':18} {'p50':>8} {'p90':>8} {'p99':>8}")
    direct = np.percentile(np.concatenate(pings["direct"]), [50, 90, 99])
    for name, runs in pings.items():
        p50, p90, p99 = np.percentile(np.concatenate(runs), [50, 90, 99])
        label = name if name == "direct" else f"proxied ({name})"
        print(f"  {label:18} {p50:8.1f} {p90:8.1f} {p99:8.1f}")
    for loop in loops:
        added = np.percentile(np.concatenate(pings[loop]), [50, 90, 99]) - direct
        print(f"  {'added (' + loop + ')':18} {added[0]:8.1f} {added[1]:8.1f} {added[2]:8.1f}")
    print(f"throughput, {args.megabytes} MiB one way (MiB/s, median of {args.rounds_proxy} turns):")
    for name, runs in rates.items():
        label = name if name == "direct" else f"proxied ({name})"
        print(f"  {label:18} {float(np.median(runs)):8.0f}")


if __name__ == "__main__":
    main()
