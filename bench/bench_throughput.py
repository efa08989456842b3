"""Sustained requests/s and latency: heisen's closed model vs Locust FastHttpUser vs wrk.

    .venv/bin/python bench/bench_throughput.py [--seconds 10] [--connections 50] [--loop both]

`--loop asyncio|uvloop|both` picks the event loop heisen's generator runs on
(HEISEN_EVENT_LOOP in its environment, through `heisen._eventloop.run`);
with `both` (the default) the two alternate, `--rounds` times each, and
each row is the median round.

Targets (each pinned to core 1): nginx with a minimal config written here,
listening on 127.0.0.1 only (needs the `nginx` binary: `apt-get install -y
nginx-light`), and an aiohttp.web server. Generators (pinned to core 0, one
at a time, 50 connections): heisen `constant(50, …)`, Locust FastHttpUser
headless (`pip install locust` into the venv), wrk (`apt-get install -y
wrk`). A tool that is missing is skipped with a hint. Peer figures measured
earlier on this box against nginx: wrk ≈ 116,000, aiohttp loop ≈ 8,100,
Locust FastHttpUser ≈ 6,200 requests/s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEN_CORE, TARGET_CORE = 0, 1

NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; use epoll; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    keepalive_requests 1000000;
    server {{ listen 127.0.0.1:{port} backlog=4096; location / {{ default_type text/plain; return 200 "ok\\n"; }} }}
}}
"""

LOCUSTFILE = """from locust import FastHttpUser, constant, task
class Bench(FastHttpUser):
    wait_time = constant(0)
    @task
    def index(self):
        self.client.get("/")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def pin(core: int) -> list[str]:
    return (
        ["taskset", "-c", str(core)]
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1
        else []
    )


# -- targets ---------------------------------------------------------------------
def start_nginx(workdir: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        print("nginx not found: `apt-get install -y nginx-light` to add it as a target")
        return None
    port = free_port()
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(d=workdir, port=port))
    proc = subprocess.Popen([*pin(TARGET_CORE), binary, "-c", str(conf), "-p", str(workdir)])
    if not wait_port(port):
        proc.kill()
        print("nginx did not start; see", workdir / "error.log")
        return None
    return proc, port


def start_aiohttp() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [*pin(TARGET_CORE), sys.executable, __file__, "--serve-aiohttp", str(port)]
    )
    if not wait_port(port):
        proc.kill()
        raise SystemExit("aiohttp server did not start")
    return proc, port


def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def index(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", index)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- generators ------------------------------------------------------------------
def gen_heisen(
    port: int, seconds: float, connections: int, loop: str = "auto"
) -> dict[str, float] | str:
    out = subprocess.run(
        [sys.executable, __file__, "--heisen-child", str(port), str(seconds), str(connections)],
        capture_output=True, text=True, timeout=seconds + 60,
        env={**os.environ, "HEISEN_EVENT_LOOP": loop},
    )  # fmt: skip
    if out.returncode != 0:
        return f"failed: {out.stderr.strip()[-300:]}"
    return dict(json.loads(out.stdout))


def heisen_child(port: int, seconds: float, connections: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {GEN_CORE})
    from heisen._eventloop import run
    from heisen.stress._latency import summarize
    from heisen.stress._models import constant
    from heisen.stress._request import HttpRequest, Repeat

    warmup_s = 1.0
    records = run(
        constant(
            connections, seconds + warmup_s, host="127.0.0.1", port=port,
            make_request=Repeat(HttpRequest.get("/")),
        )
    )  # fmt: skip
    cutoff = min(r.sent_ns for r in records if r.sent_ns) + int(warmup_s * 1e9)
    summary = summarize(r for r in records if r.sent_ns and r.sent_ns >= cutoff)
    json.dump(
        {
            "rps": summary.rps,
            "p50": summary.latency_ms["p50"],
            "p99": summary.latency_ms["p99"],
            "errors": sum(summary.errors.values()),
        },
        sys.stdout,
    )


def gen_wrk(port: int, seconds: float, connections: int) -> dict[str, float] | str:
    if not shutil.which("wrk"):
        return "wrk not found: `apt-get install -y wrk`"
    out = subprocess.run(
        [*pin(GEN_CORE), "wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=seconds + 30,
    )  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out.stdout)
    if not rps:
        return f"failed: {out.stdout[-300:]}{out.stderr[-300:]}"

    def ms(match: re.Match[str] | None) -> float:
        if match is None:
            return float("nan")
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
        return float(match.group(1)) * scale

    return {"rps": float(rps.group(1)), "p50": ms(p50), "p99": ms(p99), "errors": 0}


def gen_locust(port: int, seconds: float, connections: int) -> dict[str, float] | str:
    locust = Path(sys.executable).with_name("locust")
    if not locust.exists():
        return "Locust not installed: `.venv/bin/pip install locust` (benchmark only)"
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        report = Path(tmp) / "stats"
        subprocess.run(
            [*pin(GEN_CORE), str(locust), "-f", str(locustfile), "--headless",
             "-u", str(connections), "-r", str(connections), "-t", f"{int(seconds) + 1}s",
             "-H", f"http://127.0.0.1:{port}", "--reset-stats", "--only-summary",
             "--loglevel", "WARNING", "--csv", str(report)],
            capture_output=True, text=True, timeout=seconds + 60,
        )  # fmt: skip
        stats = Path(f"{report}_stats.csv")
        if not stats.exists():
            return "failed: Locust wrote no stats"
        lines = stats.read_text().splitlines()
        header = lines[0].split(",")
        total = next(line.split(",") for line in lines[1:] if ",Aggregated," in line)
        row = dict(zip(header, total, strict=False))
        return {
            "rps": float(row["Requests/s"]),
            "p50": float(row["50%"]),
            "p99": float(row["99%"]),
            "errors": float(row["Failure Count"]),
        }


def heisen_rounds(
    port: int, args: argparse.Namespace, loops: tuple[str, ...]
) -> dict[str, dict[str, float] | str]:
    """heisen's generator on each loop, alternating `args.rounds` times: the median round of each."""
    rounds: dict[str, list[dict[str, float]]] = {loop: [] for loop in loops}
    for _ in range(args.rounds):
        for loop in loops:
            result = gen_heisen(port, args.seconds, args.connections, loop)
            if isinstance(result, str):
                return {f"heisen ({loop})": result}
            rounds[loop].append(result)
    for loop, runs in rounds.items():
        by_round = ", ".join(f"{run['rps']:.0f}" for run in runs)
        print(f"  heisen ({loop}) req/s by round: {by_round}")
    return {
        f"heisen ({loop})": sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
        for loop, runs in rounds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--serve-aiohttp", type=int)
    parser.add_argument("--heisen-child", nargs=3)
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=1, help="turns of each loop, alternating")
    args = parser.parse_args()
    if args.serve_aiohttp:
        serve_aiohttp(args.serve_aiohttp)
        return
    if args.heisen_child:
        port, seconds, conns = args.heisen_child
        heisen_child(int(port), float(seconds), int(conns))
        return
    loops = ("asyncio", "uvloop") if args.loop == "both" else (args.loop,)
    peers = {"locust-fast": gen_locust, "wrk": gen_wrk}
    print(f"{args.connections} connections, {args.seconds:g} s per run, generator on core "
          f"{GEN_CORE}, target on core {TARGET_CORE}")  # fmt: skip
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    print(f"{'target':<10}{'generator':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    with tempfile.TemporaryDirectory(prefix="heisen-bench-") as tmp:
        for target in ("nginx", "aiohttp"):
            started = start_nginx(Path(tmp) / "nginx") if target == "nginx" else start_aiohttp()
            if started is None:
                continue
            proc, port = started
            try:
                results = heisen_rounds(port, args, loops)
                for name, run in peers.items():
                    results[name] = run(port, args.seconds, args.connections)
                for name, result in results.items():
                    if isinstance(result, str):
                        print(f"{target:<10}{name:<18}  {result}")
                        continue
                    print(f"{target:<10}{name:<18}{result['rps']:>10.0f}{result['p50']:>9.2f}"
                          f"{result['p99']:>9.2f}{result['errors']:>8.0f}")  # fmt: skip
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
