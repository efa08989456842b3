"""What makes two fuzz failures the same bug: their signature.

A signature is the outcome (`5xx`, `reset`, …), the status the service
answered, the shape of its error (a JSON body's keys and value types, or its
text with the numbers taken out) and the field the case changed. Cases with
equal signatures are one finding; the shrinker keeps a candidate only while
its signature stays the same, so a shrunk payload never drifts to another bug.

The field comes from the case itself when it changed one field of the
baseline (`FuzzCase.field_path`), else from the case label (`user: 65 chars`
→ `user`, also when an earlier run's corpus gave it: `corpus: user: 65 chars`); a case that changed several fields at once has none of its own
and joins the finding of one of its fields that failed alike (`attribute`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from heisen._yaml import format_path
from heisen.fuzz._cases import FuzzCase
from heisen.fuzz._corpus import CORPUS_LABEL

MAX_SHAPE = 120
_COMBINED = " + "


@dataclass(frozen=True)
class Signature:
    outcome: str
    status: int | None
    shape: str
    field: str | None

    @property
    def symptom(self) -> tuple[str, int | None, str]:
        """The signature without the field: what a response alone can tell."""
        return self.outcome, self.status, self.shape

    @property
    def text(self) -> str:
        status = str(self.status) if self.status is not None else "-"
        return f"{self.outcome} {status} {self.field or '(several fields)'}: {self.shape}"


def error_shape(body: bytes | str | None) -> str:
    """`{"error": "x", "code": 7}` → `{code: int, error: str}`; text with numbers as N, cut."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body or b"")
    try:
        return _shape(json.loads(raw), 0)[:MAX_SHAPE]
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", "replace").strip().replace("\n", " ")
        return without_numbers(text)[:MAX_SHAPE] or "(empty body)"


def without_numbers(text: str) -> str:
    """`qty: -1 is below the minimum 1` → `qty: N is below the minimum N`: one shape for every value."""
    return re.sub(r"-?\d+", "N", text)


def _shape(value: Any, depth: int) -> str:
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        inner = ", ".join(f"{key}: {_shape(value[key], depth + 1)}" for key in sorted(value))
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + (_shape(value[0], depth + 1) if value else "") + "]"
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "number", str: "str"}.get(type(value), "value")


def case_field(case: FuzzCase) -> str | None:
    """The field a case changed: `user`, `items[0].qty`, `query.limit`; None for several."""
    if case.field_path is not None:
        return format_path(case.field_path) or "body"
    label = _own_label(case)
    if _COMBINED in label or ":" not in label:
        return None
    return label.split(":", 1)[0].strip() or None


def combined_fields(case: FuzzCase) -> list[str]:
    """The fields of a case that changed several at once, from its label."""
    return [
        part.split(":", 1)[0].strip() for part in _own_label(case).split(_COMBINED) if ":" in part
    ]


def _own_label(case: FuzzCase) -> str:
    return case.label.removeprefix(CORPUS_LABEL)


def attribute(signature: Signature, case: FuzzCase, known: Iterable[Signature]) -> Signature:
    """A several-fields signature joins a known one of the same symptom on one of its fields."""
    if signature.field is not None:
        return signature
    fields = combined_fields(case)
    for other in known:
        if other.symptom == signature.symptom and other.field in fields:
            return other
    return signature
