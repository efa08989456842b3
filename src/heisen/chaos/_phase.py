"""The chaos phase: setup → steady state before → load + experiments + probes
→ rollback → steady state after → invariants and data loss.

The rollback (`Faults.close`, then the injector's catch-all: no toxic, every
link enabled, no burner, no chaos object) runs in a `finally`, so it happens
on success, on error and on Ctrl-C; the replicas the kills took down are
restarted by their ReplicaSet, and the phase waits until they are ready.
"""

from __future__ import annotations

import time

from heisen import events
from heisen._interrupts import signals_shielded
from heisen.chaos._backends import injector as make_injector
from heisen.chaos._data_loss import judge
from heisen.chaos._faults import Faults
from heisen.chaos._load import THREAD_NAME, chaos_load, chaos_step
from heisen.chaos._outputs import outputs
from heisen.chaos._rounds import ChaosVerdict, round_times
from heisen.chaos._schedule import Schedule
from heisen.chaos._steady_state import SteadyState
from heisen.chaos._timeline import Timeline
from heisen.errors import NotEvaluated, PhaseCrashed, SystemUnavailable
from heisen.manifest import PhaseStatus
from heisen.oracle import Verdict
from heisen.oracle.pipeline_invariants import run_setup
from heisen.outputs import ChaosOutputs
from heisen.phase import Finding, PhaseContext, PhaseResult
from heisen.stress import RequestFactory, append_load_log, expected_statuses, load_log_name


def run(ctx: PhaseContext) -> PhaseResult:
    section = ctx.pipeline.phases.chaos
    assert section is not None  # the runner runs a phase only when the pipeline has its section
    if ctx.system is None:
        raise SystemUnavailable("chaos needs a running system")
    timeline = Timeline()
    faults = Faults(timeline)
    injector = make_injector(ctx, section, faults, timeline)
    for experiment in section.experiments:
        injector.check(experiment)
        late = [t for t in round_times(experiment) if t >= section.duration]
        if late:
            _warn(
                ctx,
                f"{experiment.name}: {len(late)} round(s) start after the {section.duration:g}s load "
                "and will not be injected",
            )
    run_setup(ctx.pipeline, ctx.system)
    factory = RequestFactory(
        ctx.pipeline.scenario.requests,
        trial=1,
        seed=ctx.seed,
        run_id=ctx.manifest.run.id,
        faker_names=("chaos",),
    )
    load = chaos_load(
        ctx.pipeline,
        _address(ctx),
        factory,
        chaos_step(ctx.pipeline, section.rate, section.duration),
        service=_service(ctx),
        base_dir=ctx.loaded.base_dir,
    )
    state = SteadyState(ctx, section.probes, timeline, faults, load.records)
    schedule = Schedule(list(section.experiments), injector, timeline, ctx.seed, section.duration)
    state.check("before")
    try:
        timeline.add("load", f"{section.rate:g} req/s for {section.duration:g}s")
        load.start(THREAD_NAME)
        schedule.start()
        state.start()
        while load.running():
            load.join(0.25)
            ctx.emit(
                events.Progress(
                    "chaos",
                    f"{len(load.records())} requests, faults: "
                    f"{', '.join(faults.active()) or 'none'}",
                    timeline.now(),
                    section.duration,
                )
            )
    finally:
        with signals_shielded():
            schedule.stop_event.set()
            removed = faults.close()
            injector.rollback()
            load.stop()
            schedule.stop()
            state.stop()
            timeline.add("rollback", f"{removed} active fault(s) removed; every link reset")
    _wait_ready(ctx, timeline)
    for warning in injector.warnings:
        _warn(ctx, warning)
    if load.error is not None:  # what it sent before it stopped is still judged
        _warn(ctx, f"the chaos load stopped early: {type(load.error).__name__}: {load.error}")
    records = load.records()
    problem = load.missing_records()
    if problem is not None:
        raise PhaseCrashed(f"chaos: {problem}: the run cannot be judged")
    log = ctx.run_dir / load_log_name("chaos")
    log.unlink(missing_ok=True)
    append_load_log(log, records, factory.sent, expected_statuses(ctx.pipeline.scenario.requests))
    verdicts, loss = judge(ctx, records, factory)
    state.invariant_verdicts = {v.name: v for v in verdicts}
    state.check("after")
    typed = outputs(
        records, schedule.records, state, verdicts, loss, timeline.entries(), timeline.started
    )
    out = typed.to_manifest()
    broken_probe = state.not_evaluated()
    if broken_probe is not None:
        raise NotEvaluated(
            f"chaos: probe {broken_probe.probe} could not be evaluated ({broken_probe.window} "
            f"the faults): {broken_probe.message}",
            fault=broken_probe.fault or "environment",
            outputs=out,
        )
    errored = next((v for v in verdicts if v.errored), None)
    if errored is not None:
        assert errored.fault is not None
        raise NotEvaluated(
            f"chaos: {errored.name} could not be evaluated after the faults were rolled back: "
            f"{errored.message}",
            fault=errored.fault,
            outputs=out,
        )
    findings = [
        Finding(
            "chaos",
            v.name,
            v.message,
            f"heisen chaos {ctx.loaded.path} --seed {ctx.seed}",
            v.value,
        )
        for v in verdicts
        if v.violated
    ]
    failed = typed.verdict == ChaosVerdict.FAIL or loss.lost > 0
    reason = None if failed else _vacuity(typed, verdicts)
    if reason:
        return PhaseResult.inconclusive(reason, out)
    steady = typed.steady_state
    summary = (
        f"verdict {typed.verdict}: {sum(e.injected.count for e in typed.experiments)} fault(s) "
        f"injected, steady state {steady['before'].verdict}/"
        f"{steady['during'].verdict}/{steady['after'].verdict}, "
        f"{loss.lost} acknowledged write(s) lost, {typed.requests} requests"
    )
    return PhaseResult(
        PhaseStatus.FAILED if failed else PhaseStatus.PASSED, summary, out, findings=findings
    )


def _service(ctx: PhaseContext) -> str:
    """The service the load goes to: the one of the scenario's first request."""
    first = next(iter(ctx.pipeline.scenario.requests.values()))
    return ctx.pipeline.target_service(first)


def _address(ctx: PhaseContext) -> tuple[str, int]:
    """Where the load goes: the front of `_service`."""
    assert ctx.system is not None
    return ctx.system.service_address(_service(ctx))


def _wait_ready(ctx: PhaseContext, timeline: Timeline, deadline_s: float = 60.0) -> None:
    """Until every replica heisen runs is ready again (the supervisor restarts killed ones).

    A service at a `url:` has no replicas to wait for; a service whose replicas
    cannot be read is named in a warning, and the phase goes on.
    """
    assert ctx.system is not None
    deadline = time.monotonic() + deadline_s
    for name, service in ctx.pipeline.services.items():
        if service.url is not None:
            continue
        try:
            replicas = ctx.system.replicas(name)
        except Exception as exc:  # reported; the invariants are still judged
            _warn(
                ctx,
                f"could not wait for {name}'s replicas to be ready after the faults: "
                f"{type(exc).__name__}: {exc}",
            )
            continue
        while time.monotonic() < deadline and not all(
            i.ready and i.alive for i in replicas.replicas_info()
        ):
            time.sleep(0.1)
    timeline.add(
        "ready",
        "every replica ready" if time.monotonic() < deadline else "replicas not all ready in time",
    )


def _warn(ctx: PhaseContext, message: str) -> None:
    ctx.emit(events.Warning("chaos", message))


def _vacuity(out: ChaosOutputs, verdicts: list[Verdict]) -> str | None:
    """Why a chaos run that found nothing shows nothing: a fault that met no request, or never ran."""
    for experiment in out.experiments:
        if experiment.verdict == ChaosVerdict.AWAITED:
            return f"{experiment.name} did not complete its rounds (verdict Awaited)"
        if experiment.injected.count and not experiment.requests_in_flight:
            return f"{experiment.name}'s faults met no request in flight: the load never felt them"
    undecided = next((v for v in verdicts if v.held is None), None)
    if undecided is not None:
        return f"{undecided.name} could not be decided: {undecided.message}"
    if not out.requests:
        return "the chaos load sent no request"
    return None
