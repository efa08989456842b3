"""A trial's requests as history operations (invoke, then ok/fail/info), per DESIGN.md."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NotRequired, TypedDict

from heisen.schema import HistorySpec
from heisen.stress._records import RequestRecord
from heisen.stress._render import RenderedRequest


class _OpHead(TypedDict):
    process: int
    f: str
    key: NotRequired[Any]
    replica: NotRequired[int]


class _InitialHead(TypedDict):
    process: int
    f: str
    value: Any
    key: NotRequired[Any]
    replica: NotRequired[int]  # never set: the initial values come from no replica


class HistoryOp(_OpHead):
    """One operation as the history file holds it (`oracle.history.Operation`'s JSON form).

    `process` is the client connection (-1 for the initial values); `key` and
    `replica` are present only when known.
    """

    type: Literal["invoke", "ok", "fail", "info"]
    value: Any
    time: int


def field_of(document: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(document, Mapping) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return None
    return document


def response_json(record: RequestRecord) -> Any:
    try:
        return json.loads(record.body) if record.body else None
    except ValueError:
        return None


def operations(
    records: Iterable[RequestRecord],
    sent: Mapping[int, RenderedRequest],
    specs: Mapping[str, HistorySpec],
    *,
    key_of: Any = None,
) -> list[HistoryOp]:
    """Invoke/completion pairs for the requests whose template has `history:`.

    A 2xx is `ok`; a 4xx `fail` (the request certainly did not take effect);
    a 5xx, a timeout or a reset `info` for writes (it may have taken effect)
    and `fail` for reads (a read changes nothing). Both operations of a
    request carry `replica` when its record knows which replica served it.
    """
    ops: list[HistoryOp] = []
    for record in records:
        rendered = sent.get(record.index)
        if rendered is None or rendered.name not in specs or record.sent_ns is None:
            continue
        spec = specs[rendered.name]
        key = key_of(spec, rendered) if key_of else spec.key
        value: Any = None
        if spec.value and spec.value.startswith("request."):
            value = field_of(rendered.json_body, spec.value.removeprefix("request."))
        invoke_value = value if spec.value and spec.value.startswith("request.") else None
        ops.append(_op(record, spec.f, key, "invoke", invoke_value, record.sent_ns))
        kind: Literal["ok", "fail", "info"]
        if record.error is None and record.status is not None and 200 <= record.status < 300:
            if spec.value and spec.value.startswith("response."):
                value = field_of(response_json(record), spec.value.removeprefix("response."))
            kind = "ok"
        elif record.error is None and record.status is not None and 400 <= record.status < 500:
            kind = "fail"
        else:
            kind = "fail" if spec.f == "read" else "info"
        ops.append(_op(record, spec.f, key, kind, value, record.end_ns))
    ops.sort(key=lambda op: (op["time"], op["type"] == "invoke"))
    return ops


def _op(
    record: RequestRecord,
    f: str,
    key: Any,
    kind: Literal["invoke", "ok", "fail", "info"],
    value: Any,
    time: int,
) -> HistoryOp:
    """One operation of `record`, its keys in the order the history file has always had."""
    head: _OpHead = {"process": record.connection, "f": f}
    if key is not None:
        head["key"] = key
    if record.replica is not None:
        head["replica"] = record.replica
    return {**head, "type": kind, "value": value, "time": time}


def with_initial_values(ops: list[HistoryOp], specs: Mapping[str, HistorySpec]) -> list[HistoryOp]:
    """Prepend a completed write of each key's `initial:` value, before every other operation."""
    start = (min(op["time"] for op in ops) - 2) if ops else 0
    prefix: list[HistoryOp] = []
    for spec in specs.values():
        if spec.initial is None:
            continue
        head: _InitialHead = {"process": -1, "f": "write", "value": spec.initial}
        if spec.key:
            head["key"] = spec.key
        prefix += [
            {**head, "type": "invoke", "time": start},
            {**head, "type": "ok", "time": start + 1},
        ]
    seen = set()
    unique = []
    for op in prefix:
        marker = (op.get("key"), op["type"])
        if marker not in seen:
            seen.add(marker)
            unique.append(op)
    return unique + ops
