"""Failing cases kept between runs, so the next run tries them first.

Each failing case is one JSON file, `RUN_DIR/fuzz-corpus/<case id>.json`,
written atomically (temp file, then rename). The file holds the payload as
it went on the wire (with `NaN` and `\\ud800` where the case had them), the
outcome it caused and, once shrunk, the smaller payload. `load_previous`
reads the corpora of earlier runs back as `FuzzCase`s, shrunk ones first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from heisen._serialised import JsonObject
from heisen.errors import PipelineError, Problem
from heisen.fuzz._cases import FuzzCase, make_case
from heisen.fuzz._values import EdgeKind, decode_payload, encode_text

CORPUS_DIR = "fuzz-corpus"
CORPUS_LABEL = "corpus: "
"""What the label of a case read back from a corpus starts with."""
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CorpusEntry:
    case: FuzzCase
    outcome: str
    operation: str | None = None
    shrunk: FuzzCase | None = None
    path: Path | None = None


class Corpus:
    """The failing cases of one run, under `RUN_DIR/fuzz-corpus/`."""

    def __init__(self, run_dir: Path) -> None:
        self.directory = Path(run_dir) / CORPUS_DIR

    def add(
        self,
        case: FuzzCase,
        *,
        outcome: str,
        operation: str | None = None,
        shrunk: FuzzCase | None = None,
    ) -> Path:
        """Store (or update) a failing case; returns the file written."""
        record: JsonObject = {
            "version": FORMAT_VERSION,
            "id": case.id,
            "operation": operation,
            "outcome": outcome,
            "label": case.label,
            "kind": case.kind.value,
            "payload": case.payload,
            "path_params": dict(case.path_params),
            "query": dict(case.query),
        }
        if shrunk is not None:
            record["shrunk"] = {
                "payload": shrunk.payload,
                "path_params": dict(shrunk.path_params),
                "query": dict(shrunk.query),
            }
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{case.id}.json"
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(encode_text(record) + "\n", encoding="utf-8")
        os.replace(temporary, target)
        return target

    def entries(self) -> list[CorpusEntry]:
        if not self.directory.is_dir():
            return []
        return [_read(path) for path in sorted(self.directory.glob("*.json"))]


def load_previous(dirs: Iterable[Path], *, operation: str | None = None) -> list[FuzzCase]:
    """Cases that failed in earlier runs (run dirs or corpus dirs), shrunk versions first.

    With `operation`, only cases recorded for that operation (or for none) are returned.
    """
    cases: list[FuzzCase] = []
    seen: set[str] = set()
    for directory in map(Path, dirs):
        nested = directory / CORPUS_DIR
        corpus_dir = nested if nested.is_dir() else directory
        files = sorted(corpus_dir.glob("*.json")) if corpus_dir.is_dir() else []
        for entry in map(_read, files):
            if operation is not None and entry.operation not in (None, operation):
                continue
            for case in (entry.shrunk, entry.case):
                if case is not None and case.id not in seen:
                    seen.add(case.id)
                    cases.append(case)
    return cases


def _read(path: Path) -> CorpusEntry:
    def fail(where: str, message: str) -> PipelineError:
        return PipelineError(str(path), [Problem(where, f"{message}; delete the file or fix it")])

    try:
        record = decode_payload(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise fail("", f"not a readable corpus entry ({exc})") from exc
    if not isinstance(record, dict) or record.get("version") != FORMAT_VERSION:
        raise fail("version", f"not a heisen fuzz corpus entry of version {FORMAT_VERSION}")
    for key in ("payload", "outcome", "label", "kind"):
        if key not in record:
            raise fail(key, "missing")
    try:
        kind = EdgeKind(record["kind"])
    except ValueError as exc:
        raise fail("kind", f"unknown kind {record['kind']!r}") from exc
    label = f"{CORPUS_LABEL}{record['label']}"
    case = make_case(record["payload"], label, kind, record.get("path_params"), record.get("query"))
    shrunk = None
    if isinstance(record.get("shrunk"), dict):
        small = record["shrunk"]
        shrunk = make_case(
            small.get("payload"),
            f"{label} (shrunk)",
            kind,
            small.get("path_params"),
            small.get("query"),
        )
    return CorpusEntry(case, str(record["outcome"]), record.get("operation"), shrunk, path)
