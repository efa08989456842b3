"""What heisen's TCP proxy adds to a link when no toxic applies: latency and throughput.

    .venv/bin/python bench/bench_proxy.py [--pings 5000] [--megabytes 256]
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
Toxiproxy's own claim, for comparison: "<100µs when no toxics", ~1000 MB/s.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from heisen.system import free_port, start_proxy_daemon, wait_for_port

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


def ping_pong(port: int, count: int) -> np.ndarray:
    payload = b"x" * 64
    samples = np.empty(count)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
    echo, echo_port = start_server("echo")
    sink, sink_port = start_server("sink")
    with tempfile.TemporaryDirectory() as tmp:
        daemon, control = start_proxy_daemon(Path(tmp) / "proxyd.log", seed=0)
        try:
            os.sched_setaffinity(daemon.pid, {cpus[-1]})
            _, echo_via = control.create("echo", [f"127.0.0.1:{echo_port}"])
            _, sink_via = control.create("sink", [f"127.0.0.1:{sink_port}"])
            direct = ping_pong(echo_port, args.pings)
            proxied = ping_pong(echo_via, args.pings)
            direct_mb = stream(sink_port, args.megabytes)
            proxied_mb = stream(sink_via, args.megabytes)
        finally:
            control.close()
            daemon.stop()
            echo.kill()
            sink.kill()
            echo.wait()
            sink.wait()

    print(
        f"heisen TCP proxy, pass-through (no toxics); CPUs {cpus}, proxy pinned to CPU {cpus[-1]}"
    )
    print(f"ping-pong, 64 B, {args.pings} round trips over one connection (µs):")
    print(f"  {'':10} {'p50':>8} {'p90':>8} {'p99':>8}")
    rows = {"direct": direct, "proxied": proxied}
    for name, samples in rows.items():
        p50, p90, p99 = np.percentile(samples, [50, 90, 99])
        print(f"  {name:10} {p50:8.1f} {p90:8.1f} {p99:8.1f}")
    added = np.percentile(proxied, [50, 90, 99]) - np.percentile(direct, [50, 90, 99])
    print(f"  {'added':10} {added[0]:8.1f} {added[1]:8.1f} {added[2]:8.1f}")
    print(f"throughput, {args.megabytes} MiB one way (MiB/s):")
    print(f"  direct   {direct_mb:8.0f}")
    print(f"  proxied  {proxied_mb:8.0f}")


if __name__ == "__main__":
    main()
