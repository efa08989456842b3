"""Helpers for the oracle tests: compact histories and real registers run by threads."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from heisen.oracle import HistoryWriter, Operation, OpType, read_history


def hist(text: str) -> list[Operation]:
    """One operation per line: ``process type f value [key]``; value is JSON; time = 10 * line."""
    ops = []
    for number, raw in enumerate(line for line in text.strip().splitlines() if line.strip()):
        parts = raw.split()
        process, kind, f = int(parts[0]), parts[1], parts[2]
        value = json.loads(parts[3]) if len(parts) > 3 else None
        key = parts[4] if len(parts) > 4 else None
        ops.append(Operation(process, OpType(kind), f, value, 10 * (number + 1), key, number))
    return ops


def without_call(history: list[Operation], invoke: Operation) -> list[Operation]:
    """``history`` minus ``invoke`` and its completion (the next line of the same process)."""
    position = history.index(invoke)
    rest = history[:position]
    dropped = False
    for op in history[position + 1 :]:
        if not dropped and op.process == invoke.process and op.type is not OpType.INVOKE:
            dropped = True
            continue
        rest.append(op)
    return rest


class LockedRegister:
    """A correct register: one value per key behind a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}

    def write(self, key: str, value: Any) -> None:
        with self._lock:
            self._values[key] = value

    def read(self, key: str) -> Any:
        with self._lock:
            return self._values.get(key)


class StaleCacheRegister(LockedRegister):
    """A broken register: reads are served from a cache refreshed only every few reads."""

    def __init__(self, refresh_every: int = 4) -> None:
        super().__init__()
        self._cache: dict[str, Any] = {}
        self._reads = 0
        self._refresh_every = refresh_every

    def read(self, key: str) -> Any:
        with self._lock:
            self._reads += 1
            if key not in self._cache or self._reads % self._refresh_every == 0:
                self._cache[key] = self._values.get(key)
            return self._cache[key]


def run_clients(
    register: LockedRegister,
    path: Path,
    *,
    seed: int,
    clients: int = 4,
    operations: int = 40,
    keys: int = 2,
) -> list[Operation]:
    """Drive ``register`` from ``clients`` threads, record the history, read it back."""
    writer = HistoryWriter(path)
    counter = iter(range(1, 1_000_000))
    counter_lock = threading.Lock()

    def client(process: int) -> None:
        rng = random.Random(seed * 100 + process)
        for _ in range(operations):
            key = f"k{rng.randrange(keys)}"
            if rng.random() < 0.5:
                with counter_lock:
                    value = next(counter)
                writer.write(process, "invoke", "write", value, key=key)
                time.sleep(rng.random() * 0.0003)
                register.write(key, value)
                writer.write(process, "ok", "write", value, key=key)
            else:
                writer.write(process, "invoke", "read", None, key=key)
                time.sleep(rng.random() * 0.0003)
                result = register.read(key)
                writer.write(process, "ok", "read", result, key=key)

    threads = [threading.Thread(target=client, args=(p,)) for p in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    writer.close()
    return read_history(path)
