"""A fuzz campaign: send every case, group the failures by signature, shrink one per group.

Each group is one finding (one bug): its signature, how many cases hit it,
and an example, the case cheapest to shrink, shrunk while the *same
signature* still fails (see `_signature`). Shrinking one representative per
group keeps the cost bounded when many edges hit the same bug (int32 max +
1, int64 max, int64 max + 1 …). Every failing case is stored in the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from heisen.fuzz._cases import FuzzCase, make_case
from heisen.fuzz._send import Outcome, Sender, Verdict
from heisen.fuzz._shrink import MISSING, value_at
from heisen.fuzz._signature import Signature, attribute, case_field
from heisen.fuzz._values import EdgeKind, encode_text


@dataclass(frozen=True)
class Failure:
    """One distinct bug: its example case, the smallest payload that still fails alike, its hits."""

    case: FuzzCase
    verdict: Verdict
    shrunk: Any
    signature: Signature
    case_ids: tuple[str, ...]
    """Every case that failed with this signature, the example first."""
    shrink_attempts: int = 0

    @property
    def outcome(self) -> Outcome:
        assert self.verdict.outcome is not None
        return self.verdict.outcome

    @property
    def hits(self) -> int:
        return len(self.case_ids)


@dataclass(frozen=True)
class Budget:
    """Bounds on shrinking: attempts per failure and over the whole campaign."""

    per_failure: int = 120
    total: int = 1000
    enabled: bool = True


def run_campaign(
    sender: Sender,
    cases: Sequence[FuzzCase],
    *,
    budget: Budget,
    schema: Any = None,
    corpus: Any = None,
    operation: str | None = None,
    shrunk_before: frozenset[str] = frozenset(),
    progress: Callable[[int, int, FuzzCase, Verdict], None] | None = None,
) -> list[Failure]:
    """Send every case; one `Failure` per signature, in the order they were first seen.

    Cases in `shrunk_before` (taken from an earlier run's corpus) are not shrunk again.
    A service that refuses the sender's TLS client is SystemUnavailable before any case.
    """
    sender.check_tls()
    failing: list[tuple[FuzzCase, Verdict, Signature]] = []
    for index, case in enumerate(cases, 1):
        verdict = sender.outcome(case)
        if progress is not None:
            progress(index, len(cases), case, verdict)
        if verdict.outcome is not None:
            failing.append((case, verdict, verdict.signature(case_field(case))))
    known = [signature for _, _, signature in failing if signature.field is not None]
    groups: dict[Signature, list[tuple[FuzzCase, Verdict]]] = {}
    for case, verdict, signature in failing:
        groups.setdefault(attribute(signature, case, known), []).append((case, verdict))
    failures: list[Failure] = []
    spent = 0
    for signature, members in groups.items():
        head, verdict = min(members, key=lambda m: _example_order(m[0], shrunk_before))
        shrunk, attempts = head.payload, 0
        if (
            budget.enabled
            and sender.target.has_body
            and spent < budget.total
            and head.id not in shrunk_before
        ):
            allowed = min(budget.per_failure, budget.total - spent)
            shrunk, attempts = _shrink(sender, head, signature, schema, allowed)
            spent += attempts
        ids = (head.id, *(case.id for case, _ in members if case.id != head.id))
        failures.append(Failure(head, verdict, shrunk, signature, ids, attempts))
        if corpus is not None:
            for case, member_verdict in members:
                small = None
                if case is head and shrunk is not head.payload:
                    small = make_case(shrunk, case.label, case.kind, case.path_params, case.query)
                assert member_verdict.outcome is not None
                corpus.add(
                    case, outcome=member_verdict.outcome.value, operation=operation, shrunk=small
                )
    return failures


def _example_order(case: FuzzCase, shrunk_before: frozenset[str]) -> tuple[bool, int, int, str]:
    """Already shrunk first, then the cheapest to shrink, then the shortest on the wire: the
    same example whatever order the cases came in (a regression run picks the earlier one)."""
    wire = encode_text(case.payload)
    return case.id not in shrunk_before, shrink_effort(case.payload), len(wire), wire


def shrink_effort(payload: Any) -> int:
    """About how many attempts shrinking `payload` takes: a few per node, bisection steps per number and string."""
    effort, stack = 0, [payload]
    while stack:
        value = stack.pop()
        effort += 1
        if isinstance(value, dict):
            stack += value.values()
        elif isinstance(value, list):
            stack += value
        elif isinstance(value, str):
            effort += len(value).bit_length()
        elif isinstance(value, int) and not isinstance(value, bool):
            effort += abs(value).bit_length()
        elif isinstance(value, float):
            effort += 64
    return effort


def _shrink(
    sender: Sender, case: FuzzCase, signature: Signature, schema: Any, attempts: int
) -> tuple[Any, int]:
    """Shrink while the response keeps the signature's symptom, the failing field is still
    sent, and no other field turns invalid: when two bugs answer alike, a candidate that
    breaks another field (an empty user beside the out-of-range amount) shows the other bug."""
    from heisen.fuzz._shrink import shrink

    keep_field = case.field_path is not None and case.kind is not EdgeKind.MISSING
    invalid_before = _invalid_places(schema, case.payload)

    def still_fails(candidate: Any) -> bool:
        if keep_field and value_at(candidate, case.field_path or ()) is MISSING:
            return False
        if keep_field and not _only_under(
            _invalid_places(schema, candidate) - invalid_before, case.field_path or ()
        ):
            return False
        verdict = sender.outcome(case, candidate, use_payload=True)
        if verdict.outcome is None:
            return False
        return verdict.signature(signature.field).symptom == signature.symptom

    result = shrink(case.payload, still_fails, max_attempts=attempts, schema=schema)
    return result.shrunk, result.attempts


def _invalid_places(schema: Any, payload: Any) -> set[str]:
    """Where `payload` breaks the body schema (`body.user`, `body.items[0]`); none without one."""
    from heisen.fuzz._conformance import validate
    from heisen.fuzz._schema import Schema

    if not isinstance(schema, Schema):
        return set()
    return {problem.split(": ", 1)[0] for problem in validate(schema, payload, "body")}


def _only_under(places: set[str], path: tuple[str | int, ...]) -> bool:
    """Every place is the field at `path` or inside it."""
    field = "body" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return all(place == field or place.startswith((f"{field}.", f"{field}[")) for place in places)
