"""The smallest burst that reproduces the ladder's target: a measure of the race window.

A rate per trial saturates (0% or 100%) as soon as a race reproduces at all;
the burst size it takes does not. `sweep_bursts` sends one synchronized
burst of 2, 4, 8, ... requests (`Sweep.sizes()`), each size `sweep.trials`
times after the setup, and checks the target invariant alone. A size
reproduces when at least half of its trials violated it (a size's trials stop
as soon as that is decided either way); the sweep stops at the first size
that does, or at one that tested nothing (no request succeeded, the target
could not be decided): then it says so, never "none reproduced". A wider window needs fewer concurrent requests, so the
same sweep under stress, isolate and contain shows the window widen.

The sweep's trials run under the phase's conditions (its stubs, toxics or
CPU limits), so each phase calls it while those are in place.

With `spread:` a round's requests go out evenly over that time instead of at
once; a check-then-act window W then overlaps the next request only when W
exceeds spread / size, so the smallest reproducing size reads the window off
a ruler: it halves when the window doubles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heisen import events
from heisen.errors import UsageError
from heisen.outputs import RateFigures, SmallestLoad, Sweep, SweepStep
from heisen.phase import PhaseContext
from heisen.schema import LoadStep, PhaseName, TrialsSection
from heisen.schema import Sweep as SweepSpec
from heisen.stress._trials import Conditions, run_trials


def phase_sweep(ctx: PhaseContext, section: TrialsSection) -> SweepSpec | None:
    """The phase's own `sweep:`, else stress's: every load phase measures the same bursts."""
    if section.sweep is not None:
        return section.sweep
    stress = ctx.pipeline.phases.stress
    return stress.sweep if stress is not None else None


def sweep_bursts(
    ctx: PhaseContext, phase: PhaseName, spec: SweepSpec, load: list[LoadStep]
) -> Sweep:
    """Grow the burst until it reproduces the target in at least half of its trials."""
    target = ctx.ladder_target()
    requests = ctx.pipeline.scenario.requests
    tried: list[SweepStep] = []
    smallest: SmallestLoad | None = None
    needed = (spec.trials + 1) // 2  # at least half of them
    for size in spec.sizes():
        step = spec.step(size, load, requests)
        if step is None:  # the pipeline checker refuses this sweep; a phase's own load may not
            raise UsageError(f"phases.{phase}.sweep: say which request each burst sends")
        ctx.emit(events.Progress(phase.value, f"sweep: bursts of {size}, {spec.trials} trials"))
        result = run_trials(
            ctx,
            Conditions(
                label=f"{phase.value}-sweep-{size}",
                trials=spec.trials,
                load=[step],
                invariants=[target] if target is not None else None,
                setup=spec.setup,
                decided=lambda done, violating: (
                    violating >= needed or violating + spec.trials - done < needed
                ),
            ),
        )
        figures = RateFigures.from_manifest(result.outputs)
        reproduced = figures.violations >= needed
        tried.append(
            SweepStep(
                requests=size,
                trials=figures.trials,
                violations=figures.violations,
                reproduced=reproduced,
            )
        )
        if reproduced:
            smallest = SmallestLoad(requests=size, violation_rate=figures.violation_rate)
            break
        unmeasured = _tested_nothing(size, result.outputs)
        if unmeasured is not None:  # "not reproduced" here would claim what was never tried
            return Sweep(
                target=target,
                max=spec.max,
                tried=tried,
                smallest_reproducing_load=None,
                unmeasured=unmeasured,
            )
    return Sweep(
        target=target,
        max=spec.max,
        tried=tried,
        smallest_reproducing_load=smallest,
    )


def _tested_nothing(size: int, outputs: Mapping[str, Any]) -> str | None:
    """Why a size's trials without a violation say nothing of the window (None: they do)."""
    codes = outputs.get("status_codes") or {}
    if not any(str(code).startswith("2") for code in codes):
        shown = ", ".join(f"{code}: {count}" for code, count in codes.items()) or "none"
        return f"no request of the bursts of {size} succeeded (status codes {shown})"
    undecided = outputs.get("undecided") or []
    if undecided:
        return f"bursts of {size}: {undecided[0]['invariant']} could not be decided"
    return None


def sweep_words(sweep: Sweep | None, earlier: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """`; smallest reproducing burst 8 (stress: 32)`, or `; no burst up to 64 reproduced
    no-oversell`: with what the `earlier` phases' sweeps (phase -> outputs) found beside it."""
    if sweep is None:
        return ""
    if sweep.smallest_reproducing_load is not None:
        text = f"; smallest reproducing burst {sweep.smallest_reproducing_load.requests}"
    elif sweep.unmeasured is not None:
        text = f"; the burst sweep measured nothing: {sweep.unmeasured}"
    else:
        text = f"; no burst up to {sweep.max} reproduced {sweep.target or 'a violation'}"
    before = [
        f"{phase}: {_found(Sweep.from_manifest(outputs['sweep']))}"
        for phase, outputs in (earlier or {}).items()
        if outputs.get("sweep")
    ]
    return text + (f" ({', '.join(before)})" if before else "")


def _found(sweep: Sweep) -> str:
    smallest = sweep.smallest_reproducing_load
    if smallest is not None:
        return str(smallest.requests)
    return "not measured" if sweep.unmeasured is not None else f"none up to {sweep.max}"
