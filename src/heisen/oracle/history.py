"""Histories: every operation heisen sends, one JSON object per line (Jepsen's model).

A line is ``{"process": 3, "type": "invoke", "f": "write", "key": "user:1",
"value": 5, "time": 1200}``. Each process is sequential: an ``invoke`` is
followed, on the same process, by its completion: ``ok`` (took effect; the
value is the result), ``fail`` (certainly did not take effect) or ``info``
(unknown: it may take effect at any later time, or never). An invoke that is
never completed is treated as ``info``. ``time`` is monotonic nanoseconds;
``key`` is optional and partitions the history; ``replica`` (optional) names
the replica that served the call, for models stated per replica (``rate``).

:func:`pair_calls` turns the lines into :class:`Call` records (an invoke with
its completion), which is what the checkers work on.
"""

from __future__ import annotations

import json
import threading
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from heisen._serialised import JsonObject
from heisen.errors import UsageError

__all__ = [
    "Call",
    "HistoryError",
    "HistoryWriter",
    "OpType",
    "Operation",
    "operation_from_dict",
    "pair_calls",
    "parse_history_line",
    "read_history",
]


class OpType(StrEnum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class HistoryError(UsageError):
    """A history file that cannot be read: names the line (1-based) when it can."""

    def __init__(self, message: str, line: int | None = None, source: str = "history") -> None:
        self.message = message
        self.line = line
        self.source = source
        where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


@dataclass(frozen=True, slots=True)
class Operation:
    """One line of a history."""

    process: int | str
    type: OpType
    f: str
    value: Any = None
    time: int = 0
    key: str | int | None = None
    index: int = 0
    replica: str | int | None = None  # the replica that served it, when the records know it

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Operation:
        """An operation from its JSON form (``index`` optional); :class:`HistoryError` if invalid."""
        return operation_from_dict(dict(data))

    def to_dict(self) -> JsonObject:
        data: JsonObject = {"process": self.process, "type": self.type.value, "f": self.f}
        if self.key is not None:
            data["key"] = self.key
        data["value"] = self.value
        data["time"] = self.time
        if self.replica is not None:
            data["replica"] = self.replica
        return data


@dataclass(frozen=True, slots=True)
class Call:
    """An invoke paired with its completion. ``returned`` is None for info and pending calls."""

    id: int
    process: int | str
    f: str
    key: str | int | None
    input: Any
    output: Any
    type: OpType  # ok, fail or info (a call never completed is info)
    called: int
    returned: int | None
    invoke: Operation
    completion: Operation | None

    @property
    def operations(self) -> tuple[Operation, ...]:
        return (self.invoke,) if self.completion is None else (self.invoke, self.completion)


class HistoryWriter:
    """Append operations to a JSON-lines file; thread-safe, each line flushed as written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] = self.path.open("a", encoding="utf-8")
        self._count = 0

    def write(
        self,
        process: int | str,
        type: OpType | str,
        f: str,
        value: Any = None,
        *,
        key: str | int | None = None,
        time: int | None = None,
    ) -> Operation:
        """Record one operation now (or at ``time``) and return it."""
        with self._lock:
            op = Operation(
                process=process,
                type=OpType(type),
                f=f,
                value=value,
                time=_time.monotonic_ns() if time is None else time,
                key=key,
                index=self._count,
            )
            self._file.write(json.dumps(op.to_dict(), separators=(",", ":")) + "\n")
            self._file.flush()
            self._count += 1
            return op

    def invoke(
        self, process: int | str, f: str, value: Any = None, *, key: Any = None
    ) -> Operation:
        return self.write(process, OpType.INVOKE, f, value, key=key)

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_REQUIRED = ("process", "type", "f", "time")


def parse_history_line(text: str, line: int, source: str = "history") -> Operation:
    """Parse one JSON line into an :class:`Operation`; ``line`` is 1-based, used in errors."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryError(
            f"not valid JSON: {exc.msg} (column {exc.colno})", line, source
        ) from None
    return operation_from_dict(data, line=line, source=source)


def operation_from_dict(
    data: Any, *, line: int | None = None, source: str = "history"
) -> Operation:
    """Validate one decoded history entry; fields other than the known ones are ignored."""
    if not isinstance(data, dict):
        raise HistoryError(f"expected a JSON object, got {type(data).__name__}", line, source)
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise HistoryError(
            f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}", line, source
        )
    process = data["process"]
    if isinstance(process, bool) or not isinstance(process, int | str):
        raise HistoryError(
            f"'process' must be an integer or a string, got {process!r}", line, source
        )
    try:
        op_type = OpType(data["type"])
    except ValueError:
        raise HistoryError(
            f"unknown type {data['type']!r} (expected invoke, ok, fail or info)", line, source
        ) from None
    if not isinstance(data["f"], str) or not data["f"]:
        raise HistoryError(f"'f' must be a non-empty string, got {data['f']!r}", line, source)
    moment = data["time"]
    if isinstance(moment, bool) or not isinstance(moment, int) or moment < 0:
        raise HistoryError(
            f"'time' must be a non-negative integer (ns), got {moment!r}", line, source
        )
    key = data.get("key")
    if isinstance(key, bool) or not isinstance(key, str | int | None):
        raise HistoryError(f"'key' must be a string or an integer, got {key!r}", line, source)
    replica = data.get("replica")
    if isinstance(replica, bool) or not isinstance(replica, str | int | None):
        raise HistoryError(
            f"'replica' must be a string or an integer, got {replica!r}", line, source
        )
    index = data.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        index = 0 if line is None else line - 1
    return Operation(
        process=process,
        type=op_type,
        f=data["f"],
        value=data.get("value"),
        time=moment,
        key=key,
        index=index,
        replica=replica,
    )


MAX_VALUE_DEPTH = 64
"""Nesting levels of lists and objects an operation's value may have (the checkers recurse)."""


def _nesting(value: Any) -> int:
    """How deeply `value` nests lists and objects, without recursing."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_VALUE_DEPTH:
                break
            stack.extend(
                (inner, depth) for inner in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def read_history(path: str | Path) -> list[Operation]:
    """Read and validate a history file; raise :class:`HistoryError` naming the bad line."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot read the file: {exc.strerror or exc}", None, source) from None
    except UnicodeDecodeError as exc:
        raise HistoryError(f"not UTF-8 text: {exc.reason}", None, source) from None
    operations: list[Operation] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            operation: Operation | None = parse_history_line(raw, number, source)
        except RecursionError:  # json's scanner recurses: a line of 100,000 '['
            operation = None
        except ValueError as exc:  # e.g. an integer past Python's digit limit
            raise HistoryError(f"not valid JSON: {exc}", number, source) from None
        if operation is None or _nesting(operation.value) > MAX_VALUE_DEPTH:
            raise HistoryError(
                f"the JSON nests deeper than {MAX_VALUE_DEPTH} levels", number, source
            )
        operations.append(operation)
    pair_calls(operations, source=source)  # validates the invoke/completion structure
    return operations


def pair_calls(operations: Iterable[Operation], *, source: str = "history") -> list[Call]:
    """Pair each invoke with the next completion of the same process, in file order.

    Raises :class:`HistoryError` for a completion without an invoke, an invoke
    while the process still has one pending, or a completion whose ``f`` or
    ``key`` differs from its invoke. Calls come back in invoke order.
    """
    pending: dict[int | str, Operation] = {}
    invokes: list[Operation] = []
    completions: dict[int, Operation] = {}
    for op in operations:
        if op.type is OpType.INVOKE:
            previous = pending.get(op.process)
            if previous is not None:
                raise HistoryError(
                    f"process {op.process!r} invokes {op.f!r} while its {previous.f!r} from line "
                    f"{previous.index + 1} has not completed (a process is sequential)",
                    op.index + 1,
                    source,
                )
            pending[op.process] = op
            invokes.append(op)
            continue
        invoke = pending.pop(op.process, None)
        if invoke is None:
            raise HistoryError(
                f"{op.type.value!r} completion of process {op.process!r} without an invoke",
                op.index + 1,
                source,
            )
        if op.f != invoke.f:
            raise HistoryError(
                f"completion f {op.f!r} does not match its invoke {invoke.f!r} (line {invoke.index + 1})",
                op.index + 1,
                source,
            )
        if op.key is not None and op.key != invoke.key:
            raise HistoryError(
                f"completion key {op.key!r} does not match its invoke {invoke.key!r} "
                f"(line {invoke.index + 1})",
                op.index + 1,
                source,
            )
        completions[id(invoke)] = op
    calls = []
    for number, invoke in enumerate(invokes):
        done = completions.get(id(invoke))
        kind = OpType.INFO if done is None else done.type
        calls.append(
            Call(
                id=number,
                process=invoke.process,
                f=invoke.f,
                key=invoke.key,
                input=invoke.value,
                output=None if done is None or kind is not OpType.OK else done.value,
                type=kind,
                called=invoke.time,
                returned=None if done is None or kind is OpType.INFO else done.time,
                invoke=invoke,
                completion=done,
            )
        )
    return calls


def operations_of(calls: Sequence[Call]) -> list[Operation]:
    """The history lines of ``calls``, in their original order."""
    ops = [op for call in calls for op in call.operations]
    return sorted(ops, key=lambda op: (op.index, op.time))
