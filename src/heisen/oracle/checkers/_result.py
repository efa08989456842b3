"""What a history check finds: a verdict, violations with their minimal sub-history, stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from heisen._serialised import JsonObject
from heisen.oracle.history import Operation


class Model(StrEnum):
    """The sequential models a history can be checked against."""

    REGISTER = "register"
    CAS_REGISTER = "cas-register"
    COUNTER = "counter"
    SET = "set"
    RATE = "rate"  # takes parameters: pass a RateLimit to check()


@dataclass(frozen=True, slots=True)
class Violation:
    """A finding: ``operations`` is the smallest sub-history found that still shows it."""

    key: str | int | None
    kind: str
    message: str
    operations: tuple[Operation, ...]
    minimal: bool = True

    def to_dict(self) -> JsonObject:
        return {
            "key": self.key,
            "kind": self.kind,
            "message": self.message,
            "minimal": self.minimal,
            "operations": [op.to_dict() for op in self.operations],
        }


@dataclass(frozen=True, slots=True)
class CheckStats:
    operations: int
    keys: int
    steps: int
    seconds: float

    def to_dict(self) -> JsonObject:
        return {
            "operations": self.operations,
            "keys": self.keys,
            "steps": self.steps,
            "seconds": round(self.seconds, 6),
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """``valid``: True (consistent), False (violations found) or None (unknown: budget ran out)."""

    valid: bool | None
    model: Model
    violations: tuple[Violation, ...]
    stats: CheckStats
    unknown_keys: tuple[str | int | None, ...] = field(default=())

    @property
    def verdict(self) -> str:
        return {True: "valid", False: "invalid", None: "unknown"}[self.valid]

    def to_dict(self) -> JsonObject:
        return {
            "valid": self.valid,
            "verdict": self.verdict,
            "model": self.model.value,
            "violations": [violation.to_dict() for violation in self.violations],
            "unknown_keys": list(self.unknown_keys),
            "stats": self.stats.to_dict(),
        }
