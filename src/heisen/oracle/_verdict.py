"""The one verdict type, from the probe to the manifest.

Every invariant heisen judges (a probe's `expect:`, an `acknowledged:`
check, a history against its model) ends as a `Verdict`. Phases keep the
typed object, read `held`, `fault` and `message` from it, and turn it into
a plain mapping (`to_dict`) only where the manifest is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from heisen._serialised import JsonObject


@dataclass(frozen=True, slots=True)
class Verdict:
    """One invariant after one trial: held, violated, or not evaluated.

    `held` is True (held), False (violated) or None (not evaluated). A None
    with a `fault` is an error (`pipeline`: the invariant is wrong, exit 2;
    `environment`: what it probes is gone, exit 3); a None without one is
    undecided (a history check out of its time budget). Neither ever counts
    as held. `value` holds what the invariant compared (the evidence a
    finding shows): data read from the system, kept as it came. `severity` is
    the invariant's `severity:` over the same values (a probe's only).
    """

    name: str
    held: bool | None
    message: str
    value: Mapping[str, Any] = field(default_factory=dict)
    fault: str | None = None
    severity: float | None = None  # the invariant's `severity:` this trial (None: it has none)

    @classmethod
    def error(
        cls, name: str, fault: str, message: str, value: Mapping[str, Any] | None = None
    ) -> Verdict:
        return cls(name, None, message, dict(value or {}), fault)

    @property
    def violated(self) -> bool:
        """The invariant definitely failed (an error or an undecided check is not a violation)."""
        return self.held is False

    @property
    def errored(self) -> bool:
        """It could not be evaluated, and someone must act (see `fault`)."""
        return self.held is None and self.fault is not None

    @property
    def undecided(self) -> bool:
        """Not evaluated, and no one is at fault (a history check out of its time budget)."""
        return self.held is None and self.fault is None

    def to_dict(self) -> JsonObject:
        """The manifest's form: `{name, held, message, value}`, and `fault` when there is one."""
        data = {
            "name": self.name,
            "held": self.held,
            "message": self.message,
            "value": dict(self.value),
        }
        if self.fault is not None:
            data["fault"] = self.fault
        return data
