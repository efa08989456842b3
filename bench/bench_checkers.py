"""Benchmark the history checkers (not part of the test run).

    .venv/bin/python bench/bench_checkers.py [--seed N]

Histories come from a simulated linearizable register: each client invokes,
the operation takes effect at a random instant inside its call window (its
linearization point, applied in time order to one shared value per key),
and completes after another random delay. A broken variant serves some
reads from the value before the last write (a stale cache) to give the
checker something to find.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import random
import time
from typing import Any

from heisen.oracle import Operation, OpType, check, render_timeline


def simulate(
    rng: random.Random,
    *,
    operations: int,
    clients: int,
    keys: int,
    stale_one_in: int = 0,
) -> list[Operation]:
    """A history of ``operations`` calls from ``clients`` concurrent clients over ``keys`` keys."""
    values: dict[str, Any] = {}
    before: dict[str, Any] = {}
    lines: list[tuple[int, int, int, OpType, str, str, Any]] = []  # time, seq, client, ...
    invokes: list[tuple[int, int, int]] = []  # (time, seq, client)
    points: list[tuple[int, int, int, str, str, Any]] = []  # linearization points
    seq = 0
    for client in range(clients):
        heapq.heappush(invokes, (rng.randrange(1_000), seq, client))
        seq += 1
    issued = 0
    while (invokes and issued < operations) or points:
        take_point = points and (
            not invokes or issued >= operations or points[0][0] <= invokes[0][0]
        )
        if take_point:
            at, _, client, f, key, value = heapq.heappop(points)
            if f == "write":
                before[key] = values.get(key)
                values[key] = value
                result = value
            elif stale_one_in and key in before and rng.randrange(stale_one_in) == 0:
                result = before[key]
            else:
                result = values.get(key)
            done = at + rng.randrange(1, 2_000)
            lines.append((done, seq, client, OpType.OK, f, key, result))
            heapq.heappush(invokes, (done + rng.randrange(1, 500), seq + 1, client))
            seq += 2
            continue
        at, _, client = heapq.heappop(invokes)
        key = f"k{rng.randrange(keys)}"
        f = "write" if rng.random() < 0.5 else "read"
        value = issued if f == "write" else None
        lines.append((at, seq, client, OpType.INVOKE, f, key, value))
        heapq.heappush(points, (at + rng.randrange(1, 2_000), seq + 1, client, f, key, value))
        seq += 2
        issued += 1
    lines.sort(key=lambda line: (line[0], line[1]))
    return [
        Operation(process=client, type=kind, f=f, value=value, time=at, key=key, index=number)
        for number, (at, _, client, kind, f, key, value) in enumerate(lines)
    ]


def _run(title: str, history: list[Operation], limit_s: float, **options: Any) -> None:
    started = time.perf_counter()
    result = check(history, "register", **options)
    elapsed = time.perf_counter() - started
    calls = result.stats.operations
    within = "within" if elapsed <= limit_s else "OVER"
    print(
        f"{title:<46} {calls:>6} ops {result.stats.keys:>4} keys  {result.verdict:<8} "
        f"{elapsed * 1000:8.1f} ms ({within} {limit_s:g} s)  steps={result.stats.steps}"
    )
    for violation in result.violations[:1]:
        print(f"  {violation.kind} on {violation.key}: {violation.message}")
        print(
            f"  minimal sub-history: {len(violation.operations)} lines (1-minimal: {violation.minimal})"
        )
        print("  " + render_timeline(violation.operations, width=78).replace("\n", "\n  "))


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark heisen's history checkers.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"seed {args.seed}")
    _run(
        "valid register, 100 keys, 10 clients",
        simulate(rng, operations=10_000, clients=10, keys=100),
        1.0,
    )
    _run(
        "valid register, 1 key, 10 clients",
        simulate(rng, operations=1_000, clients=10, keys=1),
        1.0,
        time_budget_s=1.0,
    )
    timeouts = random.Random(args.seed + 1)
    with_info = [
        dataclasses.replace(op, type=OpType.INFO)
        if op.type is OpType.OK and op.f == "write" and timeouts.random() < 0.05
        else op
        for op in simulate(rng, operations=1_000, clients=10, keys=1)
    ]
    _run("1 key, 10 clients, 5% writes timed out (info)", with_info, 1.0, time_budget_s=1.0)
    _run(
        "stale-cache register, 10 keys, 10 clients",
        simulate(rng, operations=2_000, clients=10, keys=10, stale_one_in=50),
        5.0,
    )


if __name__ == "__main__":
    main()
