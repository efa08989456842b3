"""The agent's records: one JSON object per line, after a prefix no other line starts with.

A pod's log also holds what the agent's libraries print; only lines that
start with `PREFIX` are records. Kinds, in the order they come:

- `hello`: the agent's version and the phase it runs;
- `event`: a `TrialFinished`, `Progress` or `Warning` event, field by field;
- `artifact`: a text file the phase wrote in its run directory (`name`, `text`);
- `result`: the `PhaseResult`, or `error`: the error that ended the phase
  (`type`, `message`, and for partial results `outputs`, `findings`, `fault`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from heisen import events
from heisen._serialised import JsonObject
from heisen.manifest import PhaseStatus
from heisen.phase import Finding, PhaseResult

PREFIX = "heisen-agent "
_EVENTS: dict[str, type[Any]] = {
    "TrialFinished": events.TrialFinished,
    "Progress": events.Progress,
    "Warning": events.Warning,
}


def encode(kind: str, **fields: Any) -> str:
    return PREFIX + json.dumps({"kind": kind, **fields}, default=str, separators=(",", ":"))


def decode(line: str) -> JsonObject | None:
    """The record on `line`, or None for a line that is not one (a library's own output)."""
    if not line.startswith(PREFIX):
        return None
    record = json.loads(line[len(PREFIX) :])
    if not isinstance(record, dict) or "kind" not in record:
        raise ValueError(f"not an agent record: {line[:200]!r}")
    return record


def event_record(event: events.Event) -> str | None:
    name = type(event).__name__
    if name not in _EVENTS:
        return None
    return encode("event", event=name, fields=dataclasses.asdict(event))


def event_of(record: JsonObject) -> events.Event:
    return _EVENTS[str(record["event"])](**record["fields"])  # type: ignore[no-any-return]


def result_record(result: PhaseResult) -> str:
    return encode(
        "result",
        status=str(result.status),
        summary=result.summary,
        outputs=result.outputs,
        artifacts=result.artifacts,
        skip_reason=result.skip_reason,
        inconclusive_reason=result.inconclusive_reason,
        findings=[finding.to_dict() for finding in result.findings],
    )


def result_of(record: JsonObject) -> PhaseResult:
    return PhaseResult(
        status=PhaseStatus(record["status"]),
        summary=str(record["summary"]),
        outputs=dict(record.get("outputs") or {}),
        artifacts=list(record.get("artifacts") or []),
        skip_reason=record.get("skip_reason"),
        findings=findings_of(record.get("findings")),
        inconclusive_reason=record.get("inconclusive_reason"),
    )


def findings_of(data: Any) -> list[Finding]:
    return [
        Finding(
            phase=str(item["phase"]),
            name=str(item["name"]),
            message=str(item["message"]),
            replay=item.get("replay"),
            evidence=dict(item.get("evidence") or {}),
        )
        for item in (data or [])
    ]


def lines_of(record: str, width: int = 8000) -> list[str]:
    """`record` as log lines no longer than about `width`: container runtimes split longer ones.

    All but the last piece go out as continuations (`PREFIX+`), so a reader joins them back.
    """
    body = record[len(PREFIX) :]
    pieces = [body[i : i + width] for i in range(0, len(body), width)] or [""]
    return [f"{PREFIX}+{piece}" for piece in pieces[:-1]] + [PREFIX + pieces[-1]]


class Reader:
    """Joins continuation lines and decodes whole records; keeps the last other lines seen."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self.other: list[str] = []

    def feed(self, line: str) -> JsonObject | None:
        line = line.rstrip("\r\n")
        if line.startswith(PREFIX + "+"):
            self._pending.append(line[len(PREFIX) + 1 :])
            return None
        if not line.startswith(PREFIX):
            self.other = [*self.other[-19:], line]
            return None
        whole = PREFIX + "".join(self._pending) + line[len(PREFIX) :]
        self._pending = []
        return decode(whole)
