"""What the protocol tap adds to a link proxy, against real servers (`bench_proxy.py --tap`).

    .venv/bin/python bench/bench_proxy.py --tap [--ops 6000] [--rounds 40] [--protocols redis,postgres,http]

For each protocol one client keeps three connections open: straight to the
server, through a proxy of the daemon with no tap, and through a proxy whose
tap decodes the protocol (`ProxyControl.set_tap` before the connection
opens). It sends one request at a time: Redis SET/GET alternating over a raw
RESP socket (embedded redis-server), psycopg parameterised SELECT/UPDATE in
autocommit (embedded PostgreSQL; psycopg prepares them after five uses), HTTP
GET/POST over a raw keep-alive socket (an aiohttp server).

The machine may be busy, so the three ways take turns in rounds (the order
rotating from round to round) and each figure is the median over rounds of
that round's percentile. The issue's budget: the tap adds at most 50 µs at
p50 per Redis command and per PostgreSQL round trip over the untapped proxy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from heisen.system import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ProxyControl,
    free_port,
    start_proxy_daemon,
    wait_for_port,
)

BUDGET_US = 50.0
MODES = ("direct", "untapped", "tapped")
WARM_UP = 200


class Client(Protocol):
    def one(self, i: int) -> None: ...
    def close(self) -> None: ...


class RedisClient:
    """SET and GET on 100 keys, alternating, each reply read to its known length."""

    _VALUE = b"v" * 16

    def __init__(self, port: int) -> None:
        self.sock = _connect(port)
        self.requests: list[tuple[bytes, int]] = []
        for key in range(100):
            name = f"bench:{key}".encode()
            set_ = _resp(b"SET", name, self._VALUE)
            get = _resp(b"GET", name)
            self.requests += [(set_, len(b"+OK\r\n")), (get, len(b"$16\r\n") + 16 + 2)]

    def one(self, i: int) -> None:
        request, reply_length = self.requests[i % len(self.requests)]
        self.sock.sendall(request)
        _recv_exactly(self.sock, reply_length)

    def close(self) -> None:
        self.sock.close()


class PostgresClient:
    """`SELECT v FROM t WHERE id = %s` and `UPDATE t SET v = v + 1 WHERE id = %s`, alternating."""

    def __init__(self, port: int) -> None:
        import psycopg

        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.conn = psycopg.connect(dsn, autocommit=True)

    def one(self, i: int) -> None:
        row_id = (i // 2) % 100
        if i % 2:
            self.conn.execute("UPDATE t SET v = v + 1 WHERE id = %s", (row_id,))
        else:
            self.conn.execute("SELECT v FROM t WHERE id = %s", (row_id,)).fetchone()

    def close(self) -> None:
        self.conn.close()


class HttpClient:
    """GET /items/{n} and POST /items with a small JSON body, alternating, HTTP/1.1 keep-alive."""

    def __init__(self, port: int) -> None:
        self.sock = _connect(port)
        self.buffer = b""
        body = b'{"item": 7, "quantity": 2}'
        self.requests = [
            b"GET /items/7 HTTP/1.1\r\nHost: bench\r\n\r\n",
            b"POST /items HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body,
        ]

    def one(self, i: int) -> None:
        self.sock.sendall(self.requests[i % 2])
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(self.buffer) < length:
            self.buffer += self._recv()
        self.buffer = self.buffer[length:]

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the HTTP server closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


_HTTP_SERVER = r"""
import sys
from aiohttp import web
async def item(request):
    return web.json_response({"item": int(request.match_info["n"]), "stock": 12})
async def order(request):
    body = await request.json()
    return web.json_response({"ordered": body["item"]}, status=201)
app = web.Application()
app.add_routes([web.get("/items/{n}", item), web.post("/items", order)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, length: int) -> None:
    got = 0
    while got < length:
        chunk = sock.recv(length - got)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        got += len(chunk)


@contextmanager
def redis_server(tmp: Path) -> Iterator[tuple[int, Callable[[int], Client]]]:
    server = EmbeddedRedis(tmp / "redis", log_path=tmp / "redis.log")
    server.start()
    try:
        yield server.port, RedisClient
    finally:
        server.stop()


@contextmanager
def postgres_server(tmp: Path) -> Iterator[tuple[int, Callable[[int], Client]]]:
    server = EmbeddedPostgres(tmp / "postgres", log_path=tmp / "postgres.log")
    server.start()
    try:
        server.execute(
            "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);"
            " INSERT INTO t SELECT g, 0 FROM generate_series(0, 99) g;"
        )
        yield server.port, PostgresClient
    finally:
        server.stop()


@contextmanager
def http_server(tmp: Path) -> Iterator[tuple[int, Callable[[int], Client]]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", _HTTP_SERVER, str(port)])
    try:
        if not wait_for_port("127.0.0.1", port, 15):
            raise SystemExit("the aiohttp server did not start")
        yield port, HttpClient
    finally:
        process.kill()
        process.wait()


SERVERS: dict[str, Callable[[Path], Any]] = {
    "redis": redis_server,
    "postgres": postgres_server,
    "http": http_server,
}


def cpu_ns(pid: int) -> int:
    """CPU time a process's threads have run, in ns (schedstat: load-independent, unlike wall)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total


def interleaved(
    clients: Sequence[Client], ops: int, rounds: int, daemon_pid: int
) -> tuple[np.ndarray, np.ndarray]:
    """Latencies (µs), shape (rounds, clients, ops // rounds), the clients taking turns each
    round; and the daemon's CPU time per request (µs) while each client ran."""
    per_round = ops // rounds
    samples = np.empty((rounds, len(clients), per_round))
    daemon_cpu = np.zeros(len(clients))
    for client in clients:
        for i in range(WARM_UP):
            client.one(i)
    for r in range(rounds):
        for k in range(len(clients)):
            c = (r + k) % len(clients)  # rotate who goes first
            client = clients[c]
            cpu_before = cpu_ns(daemon_pid)
            for i in range(per_round):
                start = time.perf_counter_ns()
                client.one(i)
                samples[r, c, i] = time.perf_counter_ns() - start
            daemon_cpu[c] += cpu_ns(daemon_pid) - cpu_before
    return samples / 1000.0, daemon_cpu / (rounds * per_round) / 1000.0


def measure(
    protocol: str, control: ProxyControl, daemon_pid: int, tmp: Path, ops: int, rounds: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """The interleaved latencies of one protocol, the daemon's CPU per request, and what
    its tap decoded."""
    with SERVERS[protocol](tmp) as (port, make_client), ExitStack() as stack:
        upstream = [f"127.0.0.1:{port}"]
        _, untapped_port = control.create(f"{protocol}-untapped", upstream)
        _, tapped_port = control.create(f"{protocol}-tapped", upstream)
        control.set_tap(f"{protocol}-tapped", protocol)
        clients = [make_client(p) for p in (port, untapped_port, tapped_port)]
        for client in clients:
            stack.callback(client.close)
        samples, daemon_cpu = interleaved(clients, ops, rounds, daemon_pid)
        total, _, lost = control.operations_since(f"{protocol}-tapped", 1 << 62)
        untapped_total, _, _ = control.operations_since(f"{protocol}-untapped", 1 << 62)
    sent = WARM_UP + samples.shape[0] * samples.shape[2]
    decoded = f"tap decoded {total} operations of {sent} sent, lost: {lost or 'none'}"
    if untapped_total:
        decoded += f" (the untapped proxy decoded {untapped_total}!)"
    return samples, daemon_cpu, decoded


def report(protocol: str, samples: np.ndarray, daemon_cpu: np.ndarray, decoded: str) -> float:
    """Print one protocol's table; return the tap's added p50 (median over rounds)."""
    rounds, _, per_round = samples.shape
    per_round_q = np.percentile(samples, [50, 90, 99], axis=2)  # (3, rounds, modes)
    median_q = np.median(per_round_q, axis=1)  # (3, modes)
    tap_p50 = per_round_q[0, :, 2] - per_round_q[0, :, 1]
    proxy_p50 = per_round_q[0, :, 1] - per_round_q[0, :, 0]
    print(f"{protocol}: {rounds} rounds x {per_round} requests per way (µs per request)")
    print(f"  {'':9} {'direct':>9} {'untapped':>9} {'tapped':>9} {'tap adds':>9}")
    for row, name in enumerate(("p50", "p90", "p99")):
        direct, untapped, tapped = median_q[row]
        print(f"  {name:9} {direct:9.1f} {untapped:9.1f} {tapped:9.1f} {tapped - untapped:+9.1f}")
    added = float(np.median(tap_p50))
    low, high = np.percentile(tap_p50, [25, 75])
    print(f"  tap adds at p50, per round: median {added:+.1f}, IQR {low:+.1f} .. {high:+.1f}")
    print(f"  the proxy itself adds at p50: median {float(np.median(proxy_p50)):+.1f}")
    direct, untapped, tapped = daemon_cpu
    print(
        f"  {'daemon CPU':9} {direct:9.1f} {untapped:9.1f} {tapped:9.1f} {tapped - untapped:+9.1f}"
        "  (µs of proxy daemon CPU per request, all rounds)"
    )
    print(f"  {decoded}")
    return added


def main(ops: int, rounds: int, protocols: Sequence[str]) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})  # servers and clients inherit this
    load_before = os.getloadavg()
    verdicts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        daemon, control = start_proxy_daemon(tmp / "proxyd.log", seed=0)
        try:
            os.sched_setaffinity(daemon.pid, {cpus[-1]})
            results = {p: measure(p, control, daemon.pid, tmp / p, ops, rounds) for p in protocols}
        finally:
            control.close()
            daemon.stop()
    load_after = os.getloadavg()
    print(
        f"heisen proxy tap vs untapped vs direct; CPUs {cpus}, proxy daemon on CPU {cpus[-1]},"
        f" servers and client on CPU {cpus[0]}"
    )
    print(
        "load average (1/5/15 min) before "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + "/".join(f"{x:.2f}" for x in load_after)
    )
    for protocol, (samples, daemon_cpu, decoded) in results.items():
        verdicts[protocol] = report(protocol, samples, daemon_cpu, decoded)
    for protocol, added in verdicts.items():
        budget = "within" if added <= BUDGET_US else "OVER"
        scope = "" if protocol != "http" else " (the budget names Redis and PostgreSQL only)"
        print(f"verdict {protocol}: tap adds {added:+.1f} µs at p50, {budget} 50 µs{scope}")
