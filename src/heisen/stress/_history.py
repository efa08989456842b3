"""A trial's requests as history operations (invoke, then ok/fail/info), per DESIGN.md."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from heisen.schema import HistorySpec
from heisen.stress._records import RequestRecord
from heisen.stress._render import RenderedRequest


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
) -> list[dict[str, Any]]:
    """Invoke/completion pairs for the requests whose template has `history:`.

    A 2xx is `ok`; a 4xx `fail` (the request certainly did not take effect);
    a 5xx, a timeout or a reset `info` for writes (it may have taken effect)
    and `fail` for reads (a read changes nothing). Both operations of a
    request carry `replica` when its record knows which replica served it.
    """
    ops: list[dict[str, Any]] = []
    for record in records:
        rendered = sent.get(record.index)
        if rendered is None or rendered.name not in specs or record.sent_ns is None:
            continue
        spec = specs[rendered.name]
        key = key_of(spec, rendered) if key_of else spec.key
        value: Any = None
        if spec.value and spec.value.startswith("request."):
            value = field_of(rendered.json_body, spec.value.removeprefix("request."))
        base = {
            "process": record.connection,
            "f": spec.f,
            **({"key": key} if key is not None else {}),
            **({"replica": record.replica} if record.replica is not None else {}),
        }
        invoke_value = value if spec.value and spec.value.startswith("request.") else None
        ops.append({**base, "type": "invoke", "value": invoke_value, "time": record.sent_ns})
        if record.error is None and record.status is not None and 200 <= record.status < 300:
            if spec.value and spec.value.startswith("response."):
                value = field_of(response_json(record), spec.value.removeprefix("response."))
            kind = "ok"
        elif record.error is None and record.status is not None and 400 <= record.status < 500:
            kind = "fail"
        else:
            kind = "fail" if spec.f == "read" else "info"
        ops.append({**base, "type": kind, "value": value, "time": record.end_ns})
    ops.sort(key=lambda op: (op["time"], op["type"] == "invoke"))
    return ops


def with_initial_values(
    ops: list[dict[str, Any]], specs: Mapping[str, HistorySpec]
) -> list[dict[str, Any]]:
    """Prepend a completed write of each key's `initial:` value, before every other operation."""
    start = (min(op["time"] for op in ops) - 2) if ops else 0
    prefix = []
    for spec in specs.values():
        if spec.initial is None:
            continue
        base = {
            "process": -1,
            "f": "write",
            "value": spec.initial,
            **({"key": spec.key} if spec.key else {}),
        }
        prefix += [
            {**base, "type": "invoke", "time": start},
            {**base, "type": "ok", "time": start + 1},
        ]
    seen = set()
    unique = []
    for op in prefix:
        marker = (op.get("key"), op["type"])
        if marker not in seen:
            seen.add(marker)
            unique.append(op)
    return unique + ops
