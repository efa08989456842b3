"""The reproduction ladder: one violation rate per phase, read from the manifest.

When the manifest has a `ladder:` (the race it follows, `target`), the
ladder shown first is that invariant's, step by step with its amplification
over the previous step (`target_ladder`, `headline`), and every other
invariant gets one line after it (`invariant_lines`). An older manifest
without one shows each phase's overall rate, whichever invariant it came from.

The target's ladder carries both measures of the race's window: the
violation rate with its 95% interval (and the invariant's per-operation rate
with its interval, when it declares a `severity:`), and the smallest burst
that reproduced it (`Burst`: the step's `smallest_reproducing_burst`, else
the phase's `sweep:`; "none up to N" when the sweep found none, "not
measured" when no sweep ran). predict is its first rung: the calibrated
prediction when predict was calibrated (`calibration`), else its top
hotspot's rate, with its predicted smallest reproducing burst.

A phase that is inconclusive (its condition never happened) or errored (an
invariant could not be evaluated) has no rate on the ladder: it reads
``contain inconclusive`` or ``stress error``, never ``0%``, and its note says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from heisen._serialised import JsonObject
from heisen.manifest import LadderStep, PhaseRecord, RunManifest
from heisen.outputs import (
    Hotspot,
    PerOperationRate,
    SmallestPredictedLoad,
    Sweep,
)
from heisen.report._calibration import CalibrationView, calibration
from heisen.report._facts import inconclusive_reason, trial_errors
from heisen.schema import LOAD_PHASES, PhaseName

LADDER_PHASES = tuple(phase.value for phase in (PhaseName.PREDICT, *LOAD_PHASES))
"""The phases that measure (or, predict, forecast) how often the race happens."""
UNMEASURED = ("inconclusive", "error")


@dataclass(frozen=True, slots=True)
class SweepTry:
    """One burst size a sweep tried: `violations` of `trials` reproduced the race."""

    requests: int
    trials: int
    violations: int
    reproduced: bool


@dataclass(frozen=True, slots=True)
class Burst:
    """The smallest burst that reproduced the race in one phase (predict: its forecast).

    `smallest` None with tries: the sweep found none up to its maximum (`up_to`, else the
    largest burst it tried)."""

    smallest: int | None
    tried: tuple[SweepTry, ...] = ()
    up_to: int | None = None

    @property
    def largest(self) -> int | None:
        return self.up_to or max((t.requests for t in self.tried), default=None)

    def label(self) -> str:
        if self.smallest is not None:
            return f"burst {self.smallest}"
        if self.largest is not None:
            return f"burst none up to {self.largest}"
        return "burst not measured"


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
    per_operation_ci95: tuple[float, float] | None = None
    burst: Burst | None = None  # None: no sweep ran (not measured)
    condition: str | None = None  # the smallest condition that reproduced it (isolate, contain)

    def detail(self, *, bursts: bool) -> str:
        """The rung with both measures: `isolate 25% [9.0-49%] (2.5x) · 0.012 per op [..] ·
        burst 2`; `bursts`: say the burst even where it was not measured."""
        if self.status in UNMEASURED:
            return f"{self.phase} {self.status}"
        if self.rate is None:
            head = f"{self.phase} not measured"
        else:
            head = f"{self.phase} {format_rate(self.rate)}"
            if self.ci95 is not None:
                head += f" {format_interval(self.ci95)}"
            if self.amplification is not None:
                head += f" ({self.amplification:.3g}x)"
        parts = [head]
        if self.per_operation is not None:
            per_operation = f"{self.per_operation:.3g} per op"
            if self.per_operation_ci95 is not None:
                lo, hi = self.per_operation_ci95
                per_operation += f" [{lo:.3g}\N{EN DASH}{hi:.3g}]"
            parts.append(per_operation)
        if self.burst is not None or bursts:
            parts.append((self.burst or Burst(None)).label())
        if self.condition:
            parts.append(self.condition)
        return " · ".join(parts)

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


def format_interval(interval: tuple[float, float]) -> str:
    """`[0-26%]`: a rate's 95% interval, the unit said once."""
    lo, hi = interval
    return f"[{format_rate(lo).removesuffix('%')}\N{EN DASH}{format_rate(hi)}]"


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
    """The manifest's `ladder:`: its target and one rung per step, after predict's (None: it
    has none)."""
    if manifest.ladder is None:
        return None
    target = manifest.ladder.target
    rungs = [_predict_rung(manifest)] if _ran(manifest.phases.get("predict")) else []
    for step in manifest.ladder.steps:
        record = manifest.phases.get(step.phase) or PhaseRecord()
        status = str(record.status)
        figures = ((record.outputs or {}).get("per_invariant") or {}).get(target)
        trials = figures.get("trials") if isinstance(figures, dict) else None
        per_operation = _per_operation(step.per_operation_rate)
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
                _number(per_operation.mean) if per_operation else None,
                _interval(per_operation.ci95) if per_operation else None,
                None if status in UNMEASURED else _burst(step, record.outputs or {}, target),
                _condition(step),
            )
        )
    return target, [r for r in rungs if r is not None]


def _ran(record: PhaseRecord | None) -> bool:
    return record is not None and str(record.status) not in ("pending", "running", "skipped")


def _per_operation(data: JsonObject | None) -> PerOperationRate | None:
    if not data:
        return None
    try:
        figures = PerOperationRate.from_manifest(data)
    except ValidationError:
        return None
    return figures if figures.mean is not None else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _interval(value: object) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    lo, hi = (_number(v) for v in value)
    return (lo, hi) if lo is not None and hi is not None else None


def _condition(step: LadderStep) -> str | None:
    """The step's `condition:` (the smallest that reproduced), read tolerantly: older
    manifests have none."""
    condition = getattr(step, "condition", None)
    return condition if isinstance(condition, str) and condition else None


def _burst(step: LadderStep, outputs: JsonObject, target: str) -> Burst | None:
    """The step's smallest reproducing burst with the phase's sweep of the target (None: no
    sweep of the target ran). A sweep that checked another invariant, or all of them, says
    nothing about the target's burst: it is left out, never shown as the target's."""
    sweep: Sweep | None = None
    if isinstance(outputs.get("sweep"), Mapping):
        try:
            sweep = Sweep.from_manifest(outputs["sweep"])
        except ValidationError:
            sweep = None
    if sweep is not None and sweep.target != target:
        sweep = None
    tried = tuple(
        sorted(
            (
                SweepTry(t.requests, t.trials, t.violations, t.reproduced)
                for t in (sweep.tried if sweep else [])
            ),
            key=lambda t: t.requests,
        )
    )
    smallest = step.smallest_reproducing_burst
    if smallest is None and sweep is not None and sweep.smallest_reproducing_load is not None:
        smallest = sweep.smallest_reproducing_load.requests
    if smallest is None and not tried:
        return None
    # A sweep that stopped at a size which tested nothing found no "none up to max".
    up_to = sweep.max if sweep is not None and sweep.unmeasured is None else None
    return Burst(smallest, tried, up_to)


def calibration_line(view: CalibrationView) -> str:
    """`predict calibrated on no-oversell: 64 requests 12% vs 25% observed · ... (within 2x: no)`."""
    points = " · ".join(
        f"{p.load} requests {format_rate(float(p.predicted))} predicted vs "
        f"{format_rate(float(p.observed))} observed"
        for p in sorted(view.points, key=lambda p: p.load)
    )
    on = f" on {view.target}" if view.target else ""
    verdict = "" if view.within_2x is None else f" (within 2x: {'yes' if view.within_2x else 'no'})"
    burst = f"; {view.burst.line()}" if view.burst is not None else ""
    return f"predict calibrated{on}: {points}{verdict}{burst}"


def _predict_rung(manifest: RunManifest) -> Rung | None:
    """predict as the ladder's first rung: the calibrated prediction at the first load it was
    compared at (observe mode: the largest burst), else the top hotspot's rate; its burst is its
    predicted smallest one."""
    record = manifest.phases["predict"]
    status = str(record.status)
    if status in UNMEASURED:
        return Rung("predict", status, None, None, None, _why_unmeasured("predict", record))
    outputs: JsonObject = record.outputs or {}
    burst = None
    smallest = outputs.get("smallest_reproducing_load")
    if isinstance(smallest, Mapping):
        try:
            burst = Burst(SmallestPredictedLoad.from_manifest(smallest).requests)
        except ValidationError:
            burst = None
    calibrated = calibration(manifest)
    if calibrated is not None and calibrated.burst is not None:
        burst = Burst(calibrated.burst.predicted, up_to=calibrated.burst.up_to)
    if calibrated is not None:
        # A model's first point is stress's main load; observe mode predicts bursts only, and
        # its largest is the one stress's rate is closest to.
        point = calibrated.points[-1 if outputs.get("mode") == "observe" else 0]
        note = (
            f"calibrated at {point.load} requests: predicted {format_rate(float(point.predicted))}"
            f", observed {format_rate(float(point.observed))}"
        )
        return Rung("predict", status, float(point.predicted), None, None, note, burst=burst)
    hotspots = outputs.get("hotspots")
    if not isinstance(hotspots, list) or not hotspots or not isinstance(hotspots[0], Mapping):
        return Rung("predict", status, None, None, None, record.summary or "", burst=burst)
    try:
        top = Hotspot.from_manifest(hotspots[0])
    except ValidationError:
        return Rung("predict", status, None, None, None, record.summary or "", burst=burst)
    rate = float(top.predicted_violation_rate)
    interval = (float(top.ci95[0]), float(top.ci95[1])) if "ci95" in top.model_fields_set else None
    note = f"{top.boundary} {top.anomaly}".strip()
    return Rung("predict", status, rate, interval, None, note, burst=burst)


def headline(manifest: RunManifest) -> str:
    """The ladder shown first: the target's with both measures (`no-oversell: stress 0% [0-26%]
    · burst 8 → isolate 25% [9.0-49%] · burst 2`), or, in a manifest without `ladder:`, each
    phase's overall rate."""
    target = target_ladder(manifest)
    if target is None:
        return ladder_line(ladder(manifest))
    name, rungs = target
    if not rungs:
        return f"{name}: no phase measured a violation rate"
    bursts = any(r.burst is not None for r in rungs)
    return f"{name}: " + " → ".join(r.detail(bursts=bursts) for r in rungs)


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
