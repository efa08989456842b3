"""What every report must say beyond the ladder: errors, inconclusive phases, bounds, evidence.

One reading of the manifest, shared by the terminal summary, Markdown, HTML and
JUnit, so the four say the same thing in the same words:

- an errored phase's ``outputs.trial_errors`` (which invariant could not be
  evaluated, in which trial, and whether the pipeline or the environment is at
  fault);
- an inconclusive phase's ``inconclusive_reason``;
- a load phase's ``outputs.bound`` said in words ("violation rate below 1% with
  95% confidence (0 violations in 299 trials)", or why it is not proven);
- a finding's ``evidence`` as ``name=value`` pairs (its history ``timeline``
  and ``operations`` are shown by each report in its own way).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heisen._units import format_duration
from heisen.manifest import PhaseRecord, RunManifest

__all__ = [
    "HISTORY_KEYS",
    "Bound",
    "TrialError",
    "bound_of",
    "bounds",
    "error_headline",
    "evidence_line",
    "evidence_pairs",
    "format_percent",
    "inconclusive_phases",
    "inconclusive_reason",
    "trial_errors",
    "trials_needed",
]

HISTORY_KEYS = ("timeline", "operations")
KIND_MEANING = {
    "pipeline": "the pipeline is at fault (exit 2)",
    "environment": "the environment is at fault (exit 3)",
}
_MAX_VALUE = 160


@dataclass(frozen=True, slots=True)
class TrialError:
    """An invariant that could not be evaluated in one trial."""

    phase: str
    trial: int | None
    invariant: str
    kind: str
    message: str

    @property
    def where(self) -> str:
        return f"trial {self.trial}" if self.trial is not None else "a trial"

    def describe(self) -> str:
        """``trial 3: no-oversell could not be evaluated (pipeline error): unknown name 'valu'``"""
        return (
            f"{self.where}: {self.invariant} could not be evaluated ({self.kind} error): "
            f"{self.message}"
        )

    @property
    def meaning(self) -> str:
        return KIND_MEANING.get(self.kind, f"{self.kind} error")


def trial_errors(phase: str, outputs: Mapping[str, Any] | None) -> list[TrialError]:
    """The phase's ``outputs.trial_errors``, in the order the manifest lists them."""
    errors = []
    for item in (outputs or {}).get("trial_errors") or []:
        if not isinstance(item, Mapping):
            continue
        trial = item.get("trial")
        errors.append(
            TrialError(
                phase=phase,
                trial=int(trial) if isinstance(trial, int | float) else None,
                invariant=str(item.get("invariant", "?")),
                kind=str(item.get("kind", "unknown")),
                message=str(item.get("message", "")),
            )
        )
    return errors


def inconclusive_phases(manifest: RunManifest) -> list[tuple[str, str]]:
    """``(phase, reason)`` for each inconclusive phase, in run order."""
    return [
        (name, inconclusive_reason(name, record))
        for name, record in manifest.phases.items()
        if str(record.status) == "inconclusive"
    ]


def inconclusive_reason(phase: str, record: PhaseRecord) -> str:
    """Why the phase proves nothing, without a leading ``<phase>:`` (the reports name the phase)."""
    reason = record.inconclusive_reason or record.summary or "its condition never happened"
    return reason.removeprefix(f"{phase}: ")


def error_headline(phase: str, record: PhaseRecord) -> str | None:
    """``type: message`` of the phase's error, or only ``type`` when its trial errors say the rest."""
    if record.error is None:
        return None
    errors = trial_errors(phase, record.outputs)
    if errors and errors[0].message and errors[0].message in record.error.message:
        return record.error.type
    return f"{record.error.type}: {record.error.message}"


def trials_needed(rate_below: float, level: float) -> int | None:
    """Trials with 0 violations that bound the rate below ``rate_below`` at ``level``."""
    if not (0 < rate_below < 1 and 0 < level < 1):
        return None
    return math.ceil(math.log(1 - level) / math.log(1 - rate_below) - 1e-9)


def format_percent(fraction: float, *, round_up: bool = False) -> str:
    """``0.01`` → ``1%``, ``0.025`` → ``2.5%``; ``round_up`` keeps two digits, never lower."""
    percent = fraction * 100
    if percent <= 0:
        return "0%"
    if round_up:
        step = 10.0 ** (math.floor(math.log10(percent)) - 1)
        percent = math.ceil(round(percent / step, 6)) * step
    return f"{percent:.3g}%"


@dataclass(frozen=True, slots=True)
class Bound:
    """``outputs.bound`` of a load phase, with what it takes to say it in words."""

    phase: str
    rate_below: float
    level: float
    trials: int
    upper: float | None
    proven: bool
    violations: int
    budget: str | None
    trials_per_s: float | None

    @property
    def needed(self) -> int | None:
        return trials_needed(self.rate_below, self.level)

    def sentence(self) -> str:
        level = format_percent(self.level)
        target = format_percent(self.rate_below)
        if self.proven:
            return (
                f"violation rate below {target} with {level} confidence "
                f"({_count(self.violations, 'violation')} in {_count(self.trials, 'trial')})"
            )
        if self.violations:
            ran = f"{_count(self.violations, 'violation')} in {_count(self.trials, 'trial')}"
        else:
            ran = f"{_count(self.trials, 'trial')} ran" + (
                f" in {self.budget}" if self.budget else ""
            )
        upper = (
            f"; the rate is below {format_percent(self.upper, round_up=True)} at {level} confidence"
            if self.upper is not None
            else ""
        )
        needed = self.needed
        goal = (
            f" (needed {_count(needed, 'trial')} without a violation for {target})"
            if needed is not None
            else f" (the goal was below {target})"
        )
        return f"not proven: {ran}{upper}{goal}"

    def line(self) -> str:
        """The sentence and, when known, how fast trials ran."""
        speed = f"; {self.trials_per_s:.3g} trials/s" if self.trials_per_s else ""
        return self.sentence() + speed


def bound_of(
    phase: str,
    outputs: Mapping[str, Any] | None,
    *,
    pipeline: Mapping[str, Any] | None = None,
    duration_s: float | None = None,
) -> Bound | None:
    """The phase's bound, or None when it has none (no ``confidence:``).

    ``pipeline`` (the manifest's) names the time budget; else ``duration_s`` stands for it.
    """
    outputs = outputs or {}
    raw = outputs.get("bound")
    if not isinstance(raw, Mapping):
        return None
    try:
        rate_below, level = float(raw["rate_below"]), float(raw["level"])
    except (KeyError, TypeError, ValueError):
        return None
    trials = raw.get("trials", outputs.get("trials", 0))
    upper = raw.get("upper")
    speed = outputs.get("trials_per_s")
    return Bound(
        phase=phase,
        rate_below=rate_below,
        level=level,
        trials=int(trials or 0),
        upper=float(upper) if isinstance(upper, int | float) else None,
        proven=bool(raw.get("proven")),
        violations=int(outputs.get("violations") or 0),
        budget=_budget(pipeline or {}, phase, duration_s),
        trials_per_s=float(speed) if isinstance(speed, int | float) else None,
    )


def bounds(manifest: RunManifest) -> list[Bound]:
    found = (
        bound_of(name, record.outputs, pipeline=manifest.pipeline, duration_s=record.duration_s)
        for name, record in manifest.phases.items()
    )
    return [b for b in found if b is not None]


def _budget(pipeline: Mapping[str, Any], phase: str, duration_s: float | None) -> str | None:
    """``the 5m budget`` from the pipeline's ``confidence.max_duration``, else the phase's time."""
    phases = pipeline.get("phases")
    section = phases.get(phase) if isinstance(phases, Mapping) else None
    confidence = section.get("confidence") if isinstance(section, Mapping) else None
    budget = confidence.get("max_duration") if isinstance(confidence, Mapping) else None
    if isinstance(budget, str) and budget:
        return f"the {budget} budget"
    if isinstance(budget, int | float) and not isinstance(budget, bool):
        return f"the {format_duration(float(budget))} budget"
    if duration_s:
        return format_duration(duration_s)
    return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def evidence_pairs(evidence: Any) -> list[tuple[str, str]]:
    """The compared values as ``(name, value)`` text, without the history keys."""
    if not isinstance(evidence, Mapping):
        return []
    return [
        (str(name), _value(value))
        for name, value in evidence.items()
        if str(name) not in HISTORY_KEYS
    ]


def evidence_line(evidence: Any, separator: str = ", ") -> str:
    """``body.likes=87, load.like.ok=100``"""
    return separator.join(f"{name}={value}" for name, value in evidence_pairs(evidence))


def _value(value: Any) -> str:
    """JSON, so a string ``"87"`` reads differently from the number ``87``; long values cut."""
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"
