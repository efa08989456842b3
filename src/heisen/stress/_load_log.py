"""Every request a load phase sent, one JSON line each, for the report's charts over time.

`<phase>-load.jsonl` in the run directory: `{"start": ns, "end": ns,
"outcome": "ok" | "failed" | "info"}`, CLOCK_MONOTONIC nanoseconds from the
write of the request to its answer (or its end), the outcome as `load.*`
counts it. The manifest keeps a phase's totals only; this file keeps when
each request happened, whether its template declares `history:` or not.
Requests never written (`queued`) are left out: they took no time.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from heisen.schema import RequestTemplate
from heisen.stress._load_facts import outcome_of
from heisen.stress._records import RequestRecord
from heisen.stress._render import RenderedRequest

__all__ = ["append_load_log", "expected_statuses", "load_log_name"]


def load_log_name(label: str) -> str:
    return f"{label}-load.jsonl"


def expected_statuses(requests: Mapping[str, RequestTemplate]) -> dict[str, list[int]]:
    """Each request's `expect_status:`, where it has one (the answers that count as ok)."""
    return {name: r.expect_status for name, r in requests.items() if r.expect_status}


def append_load_log(
    path: Path,
    records: Iterable[RequestRecord],
    sent: Mapping[int, RenderedRequest],
    expected: Mapping[str, Collection[int]],
) -> None:
    """Append one line per record that was written to a connection; `sent` names each
    record's request, whose `expect_status:` (`expected`) decides what is ok."""
    lines = []
    for record in records:
        if record.sent_ns is None:
            continue
        rendered = sent.get(record.index)
        outcome = outcome_of(record, expected.get(rendered.name) if rendered else None)
        lines.append(
            json.dumps({"start": record.sent_ns, "end": record.end_ns, "outcome": outcome})
        )
    if lines:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
