"""Fuzz failures as people name them: what was sent and what came back
(``fuzz: qty: 2147483648 (int32 max + 1) → 500``), one per distinct failure.

fuzz reports one failure per bug, with ``hits`` (how many cases reached it)
and ``cases`` (their ids, the example first). Manifests from before that
listed every failing case, a repeat naming its first in ``duplicate_of``:
such a repeat is listed under that one, not counted again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from heisen._serialised import JsonObject
from heisen.manifest import dump_yaml

__all__ = ["FuzzFailure", "fuzz_failures", "readable_label"]

_CORPUS = "corpus: "
_LONGEST = 60  # characters of a payload that stand for a case with no label
_SHRUNK = "(shrunk)"  # the detail shows the shrunk payload beside the original


@dataclass(frozen=True, slots=True)
class FuzzFailure:
    case_id: str
    name: str
    message: str
    detail: str
    duplicates: int


def readable_label(failure: Mapping[str, Any]) -> str:
    """The case's own words, without the ``corpus:`` marks a replayed case accumulates
    and the ``(shrunk)`` mark (the detail shows both payloads)."""
    label = str(failure.get("label") or "").strip()
    while label.startswith(_CORPUS):
        label = label[len(_CORPUS) :].strip()
    label = label.removesuffix(_SHRUNK).strip()
    if label:
        return label
    sent = failure.get("shrunk", failure.get("payload"))
    if sent is None:
        return f"case {failure.get('id', '?')}"
    words = sent if isinstance(sent, str) else json.dumps(sent, ensure_ascii=False, default=str)
    return words if len(words) <= _LONGEST else words[: _LONGEST - 1] + "…"


def _result(failure: Mapping[str, Any]) -> str:
    outcome = str(failure.get("outcome") or "failed")
    statuses = [str(s) for s in failure.get("statuses") or []]
    detail = str(failure.get("detail") or "")
    if outcome == "5xx":
        return "/".join(dict.fromkeys(s for s in statuses if s.startswith("5"))) or "5xx"
    if outcome == "invariant":
        name = detail.partition(":")[0].strip()
        return f"{name} violated" if name and " " not in name else "invariant violated"
    if outcome == "nonconforming":
        return "response not as documented" + (f" ({statuses[0]})" if statuses else "")
    return outcome


def fuzz_failures(outputs: Mapping[str, Any]) -> list[FuzzFailure]:
    """One entry per distinct failure in fuzz's outputs, with a name unique among them."""
    failures: list[JsonObject] = [f for f in outputs.get("failures") or [] if isinstance(f, dict)]
    ids = {str(f.get("id")) for f in failures}
    duplicates: dict[str, list[JsonObject]] = {}
    originals = []
    for failure in failures:
        original = str(failure.get("duplicate_of") or "")
        if original and original in ids and original != str(failure.get("id")):
            duplicates.setdefault(original, []).append(failure)
        else:
            originals.append(failure)
    seen: dict[str, int] = {}
    out = []
    for failure in originals:
        name = f"fuzz: {readable_label(failure)} → {_result(failure)}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name += f" #{seen[name]}"
        also = duplicates.get(str(failure.get("id")), [])
        more = max(len(also), _int(failure.get("hits"), 1) - 1)
        out.append(
            FuzzFailure(
                str(failure.get("id")), name, _message(failure), _detail(failure, also), more
            )
        )
    return out


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _message(failure: Mapping[str, Any]) -> str:
    return str(failure.get("detail") or failure.get("outcome") or "failed")


def _detail(failure: Mapping[str, Any], also: list[JsonObject]) -> str:
    lines = [_message(failure), "", f"case: {failure.get('id')} ({failure.get('label', '')})"]
    lines.append(f"replay: {failure.get('replay', '')}")
    if failure.get("curl"):
        lines.append(f"curl (from the run directory): {failure.get('curl')}")
    lines += _block("payload", failure.get("payload"))
    if failure.get("shrunk") != failure.get("payload"):
        lines += _block("shrunk", failure.get("shrunk"))
    if also:
        lines += ["", f"the same failure, reached by {len(also)} more case(s):"]
        lines += [f"  {f.get('id')}: {readable_label(f)}" for f in also]
    others = [str(c) for c in failure.get("cases") or [] if str(c) != str(failure.get("id"))]
    hits = _int(failure.get("hits"), 1)
    if hits > 1:
        lines += ["", f"the same failure, reached by {hits - 1} more case(s)"]
        if others:
            lines[-1] += ": " + ", ".join(others)
    return "\n".join(lines)


def _block(title: str, value: Any) -> Iterable[str]:
    if value is None:
        return []
    return ["", f"{title}:", dump_yaml(value).rstrip()]
