"""The reproduction ladder: one violation rate per phase, read from the manifest.

When the manifest has a `ladder:` (the race it follows, `target`), the
ladder shown first is that invariant's, step by step with its amplification
over the previous step (`target_ladder`, `headline`), and every other
invariant gets one line after it (`invariant_lines`). An older manifest
without one shows each phase's overall rate, whichever invariant it came from.

A phase that is inconclusive (its condition never happened) or errored (an
invariant could not be evaluated) has no rate on the ladder: it reads
``contain inconclusive`` or ``stress error``, never ``0%``, and its note says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from heisen._serialised import JsonObject
from heisen.manifest import PhaseRecord, RunManifest
from heisen.report._facts import inconclusive_reason, trial_errors
from heisen.schema import LOAD_PHASES, PhaseName

LADDER_PHASES = tuple(phase.value for phase in (PhaseName.PREDICT, *LOAD_PHASES))
"""The phases that measure (or, predict, forecast) how often the race happens."""
UNMEASURED = ("inconclusive", "error")


@dataclass(frozen=True, slots=True)
class Rung:
    phase: str
    status: str
    rate: float | None
    ci95: tuple[float, float] | None
    trials: int | None
    note: str
    amplification: float | None = None  # over the previous step's rate, same invariant
    per_operation: float | None = None  # the mean of the invariant's severity: per trial

    def label(self) -> str:
        if self.status in UNMEASURED:
            return f"{self.phase} {self.status}"
        if self.rate is None:
            return f"{self.phase} —"
        extras = []
        if self.amplification is not None:
            extras.append(f"{self.amplification:.3g}x")
        if self.per_operation is not None:
            extras.append(f"{self.per_operation:.3g} per op")
        more = f" ({', '.join(extras)})" if extras else ""
        return f"{self.phase} {format_rate(self.rate)}{more}"


def format_rate(rate: float) -> str:
    percent = rate * 100
    if percent == 0:
        return "0%"
    if percent < 1:
        return f"{percent:.2f}%"
    return f"{percent:.1f}%" if percent < 10 else f"{percent:.0f}%"


def ladder(manifest: RunManifest) -> list[Rung]:
    rungs = []
    for name in LADDER_PHASES:
        record = manifest.phases.get(name)
        if record is None:
            continue
        outputs: JsonObject = record.outputs or {}
        rate: float | None = None
        ci: tuple[float, float] | None = None
        trials = outputs.get("trials")
        note = record.summary or record.skip_reason or ""
        if name == "predict":
            hotspots = outputs.get("hotspots") or []
            if hotspots:
                rate = float(hotspots[0].get("predicted_violation_rate", 0.0))
                interval = hotspots[0].get("ci95")
                ci = (float(interval[0]), float(interval[1])) if interval else None
                note = f"{hotspots[0].get('boundary')} {hotspots[0].get('anomaly')}"
        elif "violation_rate" in outputs:
            rate = float(outputs["violation_rate"])
            interval = outputs.get("ci95")
            ci = (float(interval[0]), float(interval[1])) if interval else None
        status = str(record.status)
        if status in UNMEASURED:
            rate, ci, note = None, None, _why_unmeasured(name, record)
        rungs.append(Rung(name, status, rate, ci, trials, note))
    return rungs


def _why_unmeasured(name: str, record: PhaseRecord) -> str:
    if str(record.status) == "inconclusive":
        return inconclusive_reason(name, record)
    errors = trial_errors(name, record.outputs)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return errors[0].describe() + more
    if record.error is not None:
        return f"{record.error.type}: {record.error.message}"
    return record.summary or "the phase failed to run"


def ladder_line(rungs: list[Rung]) -> str:
    shown = [r for r in rungs if r.rate is not None or r.status in UNMEASURED]
    return " → ".join(r.label() for r in shown) if shown else "no phase measured a violation rate"


def target_ladder(manifest: RunManifest) -> tuple[str, list[Rung]] | None:
    """The manifest's `ladder:`: its target and one rung per step (None: it has none)."""
    if manifest.ladder is None:
        return None
    rungs = []
    for step in manifest.ladder.steps:
        record = manifest.phases.get(step.phase) or PhaseRecord()
        status = str(record.status)
        figures = ((record.outputs or {}).get("per_invariant") or {}).get(manifest.ladder.target)
        trials = figures.get("trials") if isinstance(figures, dict) else None
        per_operation = (step.per_operation_rate or {}).get("mean")
        note = _why_unmeasured(step.phase, record) if status in UNMEASURED else record.summary
        rungs.append(
            Rung(
                step.phase,
                status,
                step.violation_rate,
                step.ci95,
                trials if isinstance(trials, int) else None,
                note or "",
                step.amplification,
                float(per_operation) if isinstance(per_operation, int | float) else None,
            )
        )
    return manifest.ladder.target, rungs


def headline(manifest: RunManifest) -> str:
    """The ladder shown first: the target's (`no-oversell: stress 0% → isolate 12%`), or, in a
    manifest without `ladder:`, each phase's overall rate."""
    target = target_ladder(manifest)
    if target is None:
        return ladder_line(ladder(manifest))
    name, rungs = target
    return f"{name}: {ladder_line(rungs)}"


def invariant_lines(manifest: RunManifest) -> list[str]:
    """One ladder per invariant (`no-oversell: stress 25% → isolate 60%`), from each phase's
    per_invariant; but the target's, which `headline` shows."""
    target = manifest.ladder.target if manifest.ladder is not None else None
    rates: dict[str, list[str]] = {}
    for name in LADDER_PHASES:
        record = manifest.phases.get(name)
        per_invariant = (record.outputs or {}).get("per_invariant") if record else None
        unmeasured = str(record.status) if record and str(record.status) in UNMEASURED else None
        for invariant, figures in (per_invariant or {}).items():
            rates.setdefault(invariant, []).append(
                f"{name} {unmeasured or format_rate(float(figures['violation_rate']))}"
            )
    return [
        f"{invariant}: {' → '.join(steps)}"
        for invariant, steps in rates.items()
        if invariant != target
    ]
