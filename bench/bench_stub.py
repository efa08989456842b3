"""heisen's stub server side by side with WireMock standalone, in one run.

    .venv/bin/python bench/bench_stub.py [--duration 10] [--connections 50] [--loop both]

`--loop asyncio|uvloop|both` picks the event loop of heisen's stub (an
asyncio policy set before the stub's module runs); with `both` (the default) it runs
once on each, one after the other, and the two rows are printed together.
The aiohttp load loop, when wrk is missing, stays on asyncio either way.

Both servers get the same two mappings (a plain `/stub`, and `/slow` with a
lognormal(median 20 ms, sigma 0.4) delay), run pinned to core 1, and are
loaded from core 0 by wrk (`apt-get install -y wrk`) or, without wrk, by a
simple aiohttp loop. Printed: requests/s on /stub with p50/p90/p99, and the
/slow quantiles next to the theoretical ones.

WireMock comes from npm (the package ships the jar); when it is missing the
script says how to get it:  cd bench/.peers/wiremock && npm install wiremock
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import NormalDist

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers" / "wiremock"
QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99)
MEDIAN, SIGMA = 20.0, 0.4
LUA = """
done = function(summary, latency, requests)
  io.write("JSON{")
  io.write(string.format('"requests":%d,"seconds":%f,"errors":%d,"q":{',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
  local qs = {10, 25, 50, 75, 90, 95, 99}
  for i, q in ipairs(qs) do
    io.write(string.format('"%d":%f', q, latency:percentile(q) / 1000))
    if i < #qs then io.write(",") end
  end
  io.write("}}\\n")
end
"""


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


def _write_root(root: Path) -> None:
    (root / "mappings").mkdir(parents=True)
    plain = {
        "request": {"method": "GET", "url": "/stub"},
        "response": {"status": 200, "body": "ok", "headers": {"Content-Type": "text/plain"}},
    }
    slow = {
        "request": {"method": "GET", "url": "/slow"},
        "response": {
            "status": 200,
            "body": "ok",
            "headers": {"Content-Type": "text/plain"},
            "delayDistribution": {"type": "lognormal", "median": MEDIAN, "sigma": SIGMA},
        },
    }
    (root / "mappings" / "stub.json").write_text(json.dumps(plain))
    (root / "mappings" / "slow.json").write_text(json.dumps(slow))


def _pin(core: int) -> list[str]:
    return (
        ["taskset", "-c", str(core)]
        if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1
        else []
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(url: str, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def _wiremock_jar() -> Path | None:
    jars = sorted(PEERS.glob("node_modules/wiremock/**/wiremock-standalone-*.jar"))
    return jars[-1] if jars else None


def _load(url: str, seconds: float, connections: int, lua: Path) -> dict[str, float]:
    if shutil.which("wrk"):
        out = subprocess.run(
            [
                *_pin(0),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--latency",
                "-s",
                str(lua),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        data = json.loads(out[out.index("JSON{") + 4 :].splitlines()[0])
        figures = {
            "rps": data["requests"] / data["seconds"],
            "seconds": data["seconds"],
            "errors": data["errors"],
        }
        figures.update({f"p{k}": v for k, v in data["q"].items()})
        return figures
    return asyncio.run(_aiohttp_load(url, seconds, connections))


async def _aiohttp_load(url: str, seconds: float, connections: int) -> dict[str, float]:
    import aiohttp

    samples: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                started = time.perf_counter()
                try:
                    async with session.get(url) as response:
                        await response.read()
                    samples.append((time.perf_counter() - started) * 1000)
                except aiohttp.ClientError:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    samples.sort()
    figures = {"rps": len(samples) / elapsed, "seconds": elapsed, "errors": errors}
    figures.update(
        {
            f"p{round(q * 100)}": samples[min(len(samples) - 1, int(q * len(samples)))]
            for q in QUANTILES
        }
    )
    return figures


def stub_args(root: Path, port: int) -> list[str]:
    return ["--root", str(root), "--port", str(port)]


def _run(
    name: str, argv: list[str], base: str, args: argparse.Namespace, lua: Path, warm_s: float
) -> dict[str, dict[str, float]]:
    log = open(HERE / "out" / f"stub_{name}.log", "w")
    process = subprocess.Popen([*_pin(1), *argv], stdout=log, stderr=subprocess.STDOUT)
    try:
        if not _wait_up(base + "/stub", 60):
            raise SystemExit(f"{name} did not start; see bench/out/stub_{name}.log")
        _load(base + "/stub", warm_s, args.connections, lua)
        _load(base + "/slow", min(warm_s, 5), args.connections, lua)
        return {
            "stub": _load(base + "/stub", args.duration, args.connections, lua),
            "slow": _load(base + "/slow", args.duration, args.connections, lua),
        }
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--skip-wiremock", action="store_true")
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    args = parser.parse_args()
    (HERE / "out").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_stub_"))
    root = tmp / "root"
    _write_root(root)
    lua = tmp / "report.lua"
    lua.write_text(LUA)
    load_tool = (
        "wrk -t1"
        if shutil.which("wrk")
        else "aiohttp loop (wrk not installed: apt-get install -y wrk)"
    )
    print(
        f"load: {load_tool}, {args.connections} connections, {args.duration:g} s per run; "
        f"servers pinned to core 1, load to core 0"
        if _pin(0)
        else "no taskset: unpinned"
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    loops = ("asyncio", "uvloop") if args.loop == "both" else (args.loop,)
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    for loop in loops:
        port = _free_port()
        results[f"heisen stub ({loop})"] = _run(
            f"heisen_{loop}",
            [sys.executable, "-c", _LOOP_BOOT, loop, "heisen.system.stub", *stub_args(root, port)],
            f"http://127.0.0.1:{port}",
            args,
            lua,
            3,
        )
    jar = _wiremock_jar()
    java = shutil.which("java")
    if args.skip_wiremock:
        pass
    elif jar is None or java is None:
        print(
            "WireMock not found. To compare: cd bench/.peers/wiremock && npm install wiremock "
            "(needs Java 17+: apt-get install -y openjdk-17-jre-headless)"
        )
    else:
        port = _free_port()
        results[f"WireMock {jar.stem.split('-')[-1]} tuned"] = _run(
            "wiremock",
            [
                java,
                "-jar",
                str(jar),
                "--port",
                str(port),
                "--bind-address",
                "127.0.0.1",
                "--root-dir",
                str(root),
                "--disable-banner",
                "--no-request-journal",
                "--disable-request-logging",
                "--async-response-enabled",
                "true",
            ],
            f"http://127.0.0.1:{port}",
            args,
            lua,
            15,
        )
    _print(results)
    print(f"\nload average after: {Path('/proc/loadavg').read_text().strip()}")
    shutil.rmtree(tmp, ignore_errors=True)


def _print(results: dict[str, dict[str, dict[str, float]]]) -> None:
    print("\n/stub (plain 200)")
    print(f"  {'server':<24}{'req/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, runs in results.items():
        s = runs["stub"]
        print(
            f"  {name:<24}{s['rps']:>10.0f}{s['p50']:>9.2f}{s['p90']:>9.2f}{s['p99']:>9.2f}{s['errors']:>8.0f}"
        )
    print(f"\n/slow (lognormal median {MEDIAN:g} ms, sigma {SIGMA:g}): measured - theory, ms")
    header = "".join(f"{'p' + str(round(q * 100)):>9}" for q in QUANTILES)
    print(f"  {'':<24}{header}{'req/s':>9}")
    theory = [MEDIAN * math.exp(SIGMA * NormalDist().inv_cdf(q)) for q in QUANTILES]
    print(f"  {'theory':<24}" + "".join(f"{t:>9.2f}" for t in theory))
    for name, runs in results.items():
        s = runs["slow"]
        measured = [s[f"p{round(q * 100)}"] for q in QUANTILES]
        print(f"  {name:<24}" + "".join(f"{m:>9.2f}" for m in measured) + f"{s['rps']:>9.0f}")
        print(
            f"  {'  delta':<24}"
            + "".join(f"{m - t:>+9.2f}" for m, t in zip(measured, theory, strict=True))
        )
        samples = s["rps"] * s["seconds"]
        print(
            f"  {'  ±1 SE of the sample':<24}"
            + "".join(f"{_quantile_error_ms(q, samples):>9.2f}" for q in QUANTILES)
        )


def _quantile_error_ms(q: float, samples: float) -> float:
    """Standard error of quantile `q` of the lognormal estimated from `samples` draws.

    Even exact delays scatter this much around theory: a 10 s run's p99 is good
    to about ±0.5 ms, so judge "within 1 ms" at p99 on a 60 s run.
    """
    z = NormalDist().inv_cdf(q)
    value = MEDIAN * math.exp(SIGMA * z)
    density = NormalDist().pdf(z) / (value * SIGMA)
    return math.sqrt(q * (1 - q) / max(samples, 1.0)) / density


if __name__ == "__main__":
    main()
