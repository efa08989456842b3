"""The register search: never branching on reads keeps its verdicts and decides busy histories fast.

The checker's budget counts its own CPU time, so a history's verdict does not
depend on how busy the machine is.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from heisen.oracle import Operation, OpType, check
from heisen.oracle.checkers._budget import WALL_FACTOR, Budget

_Call = tuple[int, int | None, str, Any, Any, OpType]  # called, returned, f, input, output, type


def _history(calls: list[_Call]) -> list[Operation]:
    """One process per call, lines in time order (invokes before completions at one instant)."""
    lines: list[tuple[int, int, Operation]] = []
    for process, (called, returned, f, given, seen, kind) in enumerate(calls, start=1):
        lines.append((called, 0, Operation(process, OpType.INVOKE, f, given, called)))
        if returned is not None:
            value = seen if f == "read" else given
            lines.append((returned, 1, Operation(process, kind, f, value, returned)))
    lines.sort(key=lambda line: (line[0], line[1]))
    return [op for _, _, op in lines]


def _step(state: Any, call: _Call) -> tuple[bool, Any]:
    _, _, f, given, seen, _ = call
    if f == "read":
        return state == seen, state
    if f == "write":
        return True, given
    return state == given[0], given[1]


def _linearizable(calls: list[_Call]) -> bool:
    """Brute force: some order of the ok calls and any subset of the unknown writes and cas."""
    kept = [
        c for c in calls if c[5] is not OpType.FAIL and not (c[2] == "read" and c[5] is OpType.INFO)
    ]
    required = [c for c in kept if c[5] is OpType.OK]
    optional = [c for c in kept if c[5] is not OpType.OK]
    for size in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, size):
            for order in itertools.permutations(required + list(chosen)):
                if _legal(order):
                    return True
    return False


def _legal(order: tuple[_Call, ...]) -> bool:
    state: Any = None
    for position, call in enumerate(order):
        # a call that returned before another was invoked must come first
        if any(later[1] is not None and later[1] < call[0] for later in order[position + 1 :]):
            return False
        accepted, state = _step(state, call)
        if not accepted:
            return False
    return True


def _random_calls(rng: random.Random, cas: bool) -> list[_Call]:
    calls: list[_Call] = []
    for _ in range(rng.randint(1, 6)):
        called = rng.randint(0, 12)
        returned = called + rng.randint(0, 8)
        f = rng.choice(["read", "write", "write", "cas"] if cas else ["read", "read", "write"])
        kind = rng.choice([OpType.OK] * 6 + [OpType.INFO, OpType.FAIL])
        given: Any = None
        if f == "write":
            given = rng.randint(1, 3)
        elif f == "cas":
            given = [rng.choice([None, 1, 2, 3]), rng.randint(1, 3)]
        seen = rng.choice([None, 1, 2, 3]) if f == "read" else None
        pending = kind is OpType.INFO and rng.random() < 0.5  # never completed: info as well
        calls.append((called, None if pending else returned, f, given, seen, kind))
    return calls


def test_register_verdicts_match_brute_force_on_small_histories() -> None:
    rng = random.Random(20261201)
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        cas = rng.random() < 0.4
        calls = _random_calls(rng, cas)
        expected = _linearizable(calls)
        result = check(_history(calls), "cas-register" if cas else "register", minimize=False)
        assert result.valid is expected, calls
        verdicts[expected] += 1
    assert min(verdicts.values()) > 300, verdicts  # both kinds of history were tried


def _correct_register(seed: int, calls: int, mean_latency_s: float) -> list[Operation]:
    """A linearizable register's history at 100 calls/s: each call takes effect at a random
    moment between its invoke and its completion; a quarter write, the rest read."""
    rng = random.Random(seed)
    made: list[tuple[float, float, float, str, int]] = []
    now = 0.0
    for number in range(1, calls + 1):
        now += rng.expovariate(100.0)
        latency = rng.expovariate(1 / mean_latency_s)
        made.append(
            (
                now,
                now + latency,
                now + rng.random() * latency,
                "w" if rng.random() < 0.25 else "r",
                number,
            )
        )
    value, seen = 0, {}
    for _, _, _, f, number in sorted(made, key=lambda call: call[2]):
        if f == "w":
            value = number
        else:
            seen[number] = value
    ops = [Operation(0, OpType.INVOKE, "write", 0, 0), Operation(0, OpType.OK, "write", 0, 1)]
    lines = []
    for called, returned, _, f, number in made:
        value = number if f == "w" else None
        name = "write" if f == "w" else "read"
        lines.append(
            (called, 0, Operation(number, OpType.INVOKE, name, value, int(called * 1e9) + 2))
        )
        done = number if f == "w" else seen[number]
        lines.append(
            (returned, 1, Operation(number, OpType.OK, name, done, int(returned * 1e9) + 2))
        )
    lines.sort(key=lambda line: (line[0], line[1]))
    return ops + [op for _, _, op in lines]


def test_a_correct_register_under_high_latency_is_decided_in_few_steps() -> None:
    # 100 calls at 120 ms mean latency (up to ~20 in flight), as a correct service answers on a
    # loaded machine: branching on every read took over 3 million steps here; now under 10,000.
    history = _correct_register(5, 100, 0.12)
    result = check(history, "register", time_budget_s=60.0, max_steps=50_000, minimize=False)
    assert result.valid is True, result.stats
    assert result.stats.steps < 20_000, result.stats


def test_the_budget_counts_cpu_time_not_waiting() -> None:
    budget = Budget(0.05)
    time.sleep(0.2)  # a starved checker waits like this: none of its budget is spent
    assert not budget.exhausted()
    began = time.thread_time()
    while budget.spend(1):
        pass
    assert time.thread_time() - began >= 0.04


def test_the_budget_still_bounds_wall_clock_time() -> None:
    budget = Budget(0.01)
    time.sleep(0.01 * WALL_FACTOR + 0.05)
    assert budget.exhausted()
