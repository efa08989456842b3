"""Timelines of (sub-)histories: text lanes for the terminal, plain data for the HTML report.

Columns follow the *order* of events, not their raw times: every invoke and
completion gets its own rank, so which calls overlap — what decides
linearizability — stays visible however short or long each call was.
"""

from __future__ import annotations

from collections.abc import Sequence

from heisen._serialised import JsonObject
from heisen.oracle.checkers._values import show
from heisen.oracle.history import Call, Operation, OpType, pair_calls

__all__ = ["render_timeline", "timeline_data"]


def _ranks(calls: Sequence[Call]) -> tuple[dict[int, int], dict[int, int], int]:
    events = []
    for call in calls:
        events.append((call.called, 0, call.id))
        if call.completion is not None:
            events.append((call.completion.time, 1, call.id))
    events.sort()
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for rank, (_, kind, number) in enumerate(events):
        (starts if kind == 0 else ends)[number] = rank
    return starts, ends, len(events)


def _label(call: Call) -> str:
    if call.f == "read":
        result = show(call.output) if call.type is OpType.OK else "?"
        text = f"r {result}"
    elif call.f == "cas" and isinstance(call.input, list) and len(call.input) == 2:
        text = f"cas {show(call.input[0])}→{show(call.input[1])}"
    elif call.f == "write":
        text = f"w {show(call.input)}"
    else:
        text = f"{call.f} {show(call.input)}" if call.input is not None else call.f
    if call.type is OpType.FAIL:
        text += " ✗"
    elif call.type is OpType.INFO:
        text += " ?"
    return text


def timeline_data(operations: Sequence[Operation]) -> list[JsonObject]:
    """One dict per call (invoke + completion), in invocation order, for the HTML report."""
    calls = pair_calls(operations)
    starts, ends, _ = _ranks(calls)
    return [
        {
            "process": call.process,
            "f": call.f,
            "key": call.key,
            "type": call.type.value,
            "input": call.input,
            "output": call.output,
            "start": call.called,
            "end": call.completion.time if call.completion is not None else None,
            "start_rank": starts[call.id],
            "end_rank": ends.get(call.id),
            "label": _label(call),
            "lines": [op.index + 1 for op in call.operations],
        }
        for call in calls
    ]


def render_timeline(operations: Sequence[Operation], width: int = 80) -> str:
    """Text lanes, one per process: ``[w 1───]`` from invoke to completion, ``…>`` if unknown."""
    calls = pair_calls(operations)
    if not calls:
        return "(empty history)"
    starts, ends, total = _ranks(calls)
    processes = sorted({call.process for call in calls}, key=lambda p: (isinstance(p, str), str(p)))
    gutter = max(len(f"p{p}") for p in processes) + 1
    lane = max(10, width - gutter - 2)
    scale = (lane - 1) / max(1, total - 1)
    lines = []
    for process in processes:
        row = [" "] * lane
        for call in (c for c in calls if c.process == process):
            left = round(starts[call.id] * scale)
            end = ends.get(call.id)
            right = lane - 1 if end is None else max(left + 1, round(end * scale))
            right = min(right, lane - 1)
            for column in range(left, right + 1):
                row[column] = "─"
            row[left] = "["
            row[right] = ">" if end is None or call.type is OpType.INFO else "]"
            label = _label(call)[: max(0, right - left - 1)]
            for offset, char in enumerate(label):
                row[left + 1 + offset] = char
        lines.append(f"{f'p{process}':<{gutter}}|{''.join(row)}|")
    legend = [
        f"  p{call.process}: {_label(call)} ({call.type.value}, lines "
        f"{', '.join(str(op.index + 1) for op in call.operations)})"
        for call in calls
    ]
    return "\n".join(lines + legend)
