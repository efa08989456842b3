"""Plans and runs phases over one manifest, and owns the system's lifecycle.

The runner is the only place that starts the system under test and the only
place that stops it: in a `finally`, after Ctrl-C and SIGTERM alike (both
raised in the main thread, then recorded as `Interrupted`). Should stopping
hang, the stop deadline kills what was started and exits 130. The manifest is
saved after every phase change, so whatever happens it stays a valid file
whose status says how the run ended. What fails to stop is said, not
swallowed: a `TeardownFailed` event and the manifest's `teardown:`.

The runner chooses the System each phase runs on; the phase sees only the
`System` protocol as `ctx.system`. That is the one on this machine
(`SystemHandle`, started when a phase first needs it and stopped at the end
of the run), except for a phase whose section puts it on a cluster (contain
with `backend: kubernetes`): for it the runner makes a `KubeSystem` in the
section's namespace, under the limits the phase asks for, starts it before
the phase and deletes it right after, on every path. What of that fails to
stop is a warning after a failing phase and the phase's error after a
passing one.

Phases are registered by name in `PHASES` (each imported when a run first
needs it). `Runner.check` (`heisen check`) starts and stops the system the
same way, runs the setup and each probe once, and writes no manifest.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import secrets
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heisen import __version__, events
from heisen._interrupts import (
    Terminated,
    interrupts_raise,
    raise_if_interrupted,
    signals_shielded,
    stop_deadline,
)
from heisen._units import parse_duration
from heisen.errors import HeisenError, Interrupted, PhaseCrashed, UsageError
from heisen.ladder import build_ladder
from heisen.manifest import (
    PhaseError,
    PhaseRecord,
    PhaseStatus,
    RunInfo,
    RunManifest,
    RunStatus,
    TeardownRecord,
    now,
)
from heisen.phase import Finding, PhaseContext, PhaseResult, PhaseRun
from heisen.schema import (
    ContainSection,
    LoadedPipeline,
    PhaseName,
    Pipeline,
    Resources,
    TrialsSection,
)
from heisen.seeds import new_seed
from heisen.system_protocol import System, TeardownProblem

if TYPE_CHECKING:
    from heisen.oracle import Verdict
    from heisen.system import KubeSystem

CRASH_LOG = "heisen-crash.log"
# How long an interrupted run may take to stop before heisen kills what it started and exits.
STOP_DEADLINE_S = 40.0
STOP_DEADLINE_VARIABLE = "HEISEN_STOP_DEADLINE"


@dataclass
class RunOutcome:
    manifest: RunManifest
    run_dir: Path
    findings: list[Finding] = field(default_factory=list)
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """Where a phase runs the system instead of this machine: one namespace of a Kubernetes cluster.

    `kubeconfig` is as the pipeline writes it (relative to the pipeline's
    file); `limits` are the CPU and memory each service's Deployment gets.
    """

    namespace: str
    kubeconfig: str | None
    context: str | None
    limits: Mapping[str, Resources]
    agent_image: str


@dataclass(frozen=True, slots=True)
class RegisteredPhase:
    """A phase as the runner drives it: its `run`, whether it needs the local system started,
    and the cluster it runs on instead, if the pipeline puts it on one."""

    run: PhaseRun
    needs_system: Callable[[Pipeline, Mapping[str, Any]], bool] = lambda pipeline, options: True
    cluster: Callable[[Pipeline], Cluster | None] = lambda pipeline: None


def _predict() -> RegisteredPhase:
    from heisen import predict

    return RegisteredPhase(predict.run, needs_system=predict.needs_system)


def _stress() -> RegisteredPhase:
    from heisen import stress

    return RegisteredPhase(stress.run)


def _fuzz() -> RegisteredPhase:
    from heisen import fuzz

    return RegisteredPhase(fuzz.run)


def _isolate() -> RegisteredPhase:
    from heisen import isolate

    return RegisteredPhase(isolate.run)


def _contain() -> RegisteredPhase:
    from heisen import contain

    def cluster(pipeline: Pipeline) -> Cluster | None:
        section = pipeline.phases.contain
        if section is None or section.backend != "kubernetes":
            return None
        return _cluster(pipeline, section.namespace)

    return RegisteredPhase(
        contain.run,
        needs_system=lambda pipeline, options: contain.needs_system(pipeline),
        cluster=cluster,
    )


def _chaos() -> RegisteredPhase:
    from heisen import chaos

    def cluster(pipeline: Pipeline) -> Cluster | None:
        section = pipeline.phases.chaos
        if section is None or section.backend != "kubernetes":
            return None
        return _cluster(pipeline, section.namespace)

    return RegisteredPhase(chaos.run, cluster=cluster)


def _cluster(pipeline: Pipeline, namespace: str) -> Cluster:
    """The cluster a phase runs on: contain's section says how to reach it and what limits hold."""
    from heisen import contain

    section = pipeline.phases.contain or ContainSection()
    return Cluster(
        namespace=namespace,
        kubeconfig=section.kubeconfig,
        context=section.context,
        limits=contain.effective_limits(pipeline, section.resources),
        agent_image=section.agent_image,
    )


PHASES: Mapping[PhaseName, Callable[[], RegisteredPhase]] = {
    PhaseName.PREDICT: _predict,
    PhaseName.STRESS: _stress,
    PhaseName.FUZZ: _fuzz,
    PhaseName.ISOLATE: _isolate,
    PhaseName.CONTAIN: _contain,
    PhaseName.CHAOS: _chaos,
}
"""Every phase, by name: each imports its package when a run first needs it."""


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """`heisen check`: a verdict per probe invariant, and the invariants only a trial's load can judge."""

    verdicts: list[Verdict]
    from_load: list[str]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def stop_deadline_s() -> float:
    """STOP_DEADLINE_S, or the duration in $HEISEN_STOP_DEADLINE (such as `10s`)."""
    text = os.environ.get(STOP_DEADLINE_VARIABLE, "").strip()
    if not text:
        return STOP_DEADLINE_S
    try:
        seconds = parse_duration(text if text[-1].isalpha() else float(text))
    except ValueError as exc:
        raise UsageError(f"{STOP_DEADLINE_VARIABLE}={text!r}: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"{STOP_DEADLINE_VARIABLE}={text!r}: must be more than 0s")
    return seconds


def phase_named(name: str) -> PhaseName:
    """The phase called `name`; UsageError naming the phases when there is none."""
    try:
        return PhaseName(name)
    except ValueError:
        raise UsageError(f"no phase named {name!r} (phases: {', '.join(PhaseName)})") from None


def select_phases(
    *, only: Sequence[str] = (), skip: Sequence[str] = (), start_from: str | None = None
) -> list[PhaseName]:
    chosen_only = {phase_named(name) for name in only}
    skipped = {phase_named(name) for name in skip}
    chosen = list(PhaseName)
    if start_from:
        chosen = chosen[chosen.index(phase_named(start_from)) :]
    if only:
        chosen = [name for name in chosen if name in chosen_only]
    return [name for name in chosen if name not in skipped]


class Runner:
    def __init__(
        self,
        loaded: LoadedPipeline,
        *,
        run_dir: Path,
        phases: Sequence[PhaseName],
        seed: int | None = None,
        sink: events.EventSink = events.discard,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        manifest: RunManifest | None = None,
    ) -> None:
        self.loaded = loaded
        self.run_dir = run_dir
        self.phases = list(phases)
        self.sink = sink
        self.options = options or {}
        if manifest is None:
            chosen_seed = seed if seed is not None else loaded.pipeline.seed
            manifest = RunManifest(
                run=RunInfo(
                    id=run_dir.name,
                    pipeline=str(loaded.path),
                    pipeline_sha256=loaded.sha256,
                    seed=chosen_seed if chosen_seed is not None else new_seed(),
                    started_at=now(),
                    heisen_version=__version__,
                ),
                pipeline=loaded.raw,
            )
            for name in PhaseName:
                manifest.phase(name.value)
        self.manifest = manifest
        self.system: System | None = None
        self._stop_deadline_s = stop_deadline_s()
        self._stopping: System | None = None  # the system while it is being stopped
        self._on_cluster: System | None = None  # a phase's own system, while it runs or stops
        self._persist = True  # False for `check`: it writes no manifest

    @property
    def seed(self) -> int:
        return self.manifest.run.seed

    def save(self) -> None:
        if self._persist:
            predicted = self.manifest.phases.get(PhaseName.PREDICT.value)
            hotspots = (predicted.outputs or {}).get("hotspots") or [] if predicted else []
            target = self.loaded.pipeline.ladder_target(hotspots)
            if target is not None:  # the ladder as the load phases have measured it so far
                self.manifest.ladder = build_ladder(self.manifest, target) or self.manifest.ladder
            self.manifest.save(self.run_dir)

    def check(self) -> CheckOutcome:
        """Start the system, run the setup and every probe invariant once (no load), stop.

        No phase runs and no manifest is written; what fails to stop is reported
        as at the end of a run.
        """
        from heisen.oracle.pipeline_invariants import evaluate_probe, is_probe, run_setup
        from heisen.stress import load_variables

        self._persist = False
        pipeline = self.loaded.pipeline
        outcome = CheckOutcome([], [])
        # No load ran: `load.<request>.*` are all zero, as before a trial's first request.
        no_load = load_variables([], {}, list(pipeline.scenario.requests))
        with stop_deadline(self._stop_deadline_s, self._give_up_stopping):
            try:
                with interrupts_raise():
                    system = self._start_system(announce=False)
                    run_setup(pipeline, system)
                    for invariant in pipeline.invariants:
                        if is_probe(invariant):
                            outcome.verdicts.append(
                                evaluate_probe(pipeline, system, invariant, {"seed": 0}, no_load)
                            )
                        else:
                            outcome.from_load.append(invariant.name)
            finally:
                with signals_shielded():
                    self._stop_system()
        return outcome

    def run(self) -> RunOutcome:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        outcome = RunOutcome(self.manifest, self.run_dir)
        with stop_deadline(self._stop_deadline_s, self._give_up_stopping):
            try:
                # From the first save on, a signal ends the run as interrupted: the manifest
                # exists, so it must say so.
                with interrupts_raise():
                    self.manifest.status = RunStatus.RUNNING
                    self.manifest.run.finished_at = None
                    self.save()
                    self.sink(
                        events.RunStarted(
                            self.manifest.run.id, str(self.run_dir), self.seed, tuple(self.phases)
                        )
                    )
                    for name in self.phases:
                        result = self._run_phase(name)
                        outcome.findings.extend(result.findings)
                        if name is PhaseName.STRESS:  # predict refits on what stress measured
                            from heisen.predict import calibrate_from

                            if calibrate_from(self.manifest, self.loaded, seed=self.seed):
                                self.save()
                self.manifest.status = self._overall_status()
            except (KeyboardInterrupt, Interrupted) as exc:
                reason = (
                    "terminated by SIGTERM"
                    if isinstance(exc, Terminated)
                    else "interrupted by Ctrl-C"
                )
                self._mark_running_as(PhaseStatus.ERROR, "Interrupted", reason)
                self.manifest.status = RunStatus.INTERRUPTED
                outcome.error = exc if isinstance(exc, Interrupted) else Interrupted(reason)
            except HeisenError as exc:
                self._mark_running_as(PhaseStatus.ERROR, type(exc).__name__, str(exc))
                self.manifest.status = RunStatus.ERROR
                outcome.error = exc
            except Exception as exc:  # outside a phase (starting the system): still never a verdict
                self._log_traceback("-", exc)
                crash = PhaseCrashed(f"heisen failed: {type(exc).__name__}: {exc}")
                self._mark_running_as(PhaseStatus.ERROR, type(crash).__name__, str(crash))
                self.manifest.status = RunStatus.ERROR
                outcome.error = crash
            finally:
                with signals_shielded():
                    self._stop_system()
                    self.manifest.run.finished_at = now()
                    self.save()
        self.sink(events.RunFinished(str(self.manifest.status), str(self.run_dir)))
        return outcome

    def _overall_status(self) -> RunStatus:
        statuses = [self.manifest.phases[name.value].status for name in self.phases]
        if PhaseStatus.ERROR in statuses:
            return RunStatus.ERROR
        if PhaseStatus.FAILED in statuses:
            return RunStatus.FAILED
        if PhaseStatus.INCONCLUSIVE in statuses:
            return RunStatus.INCONCLUSIVE
        return RunStatus.PASSED

    def _mark_running_as(self, status: PhaseStatus, error_type: str, message: str) -> None:
        for record in self.manifest.phases.values():
            if record.status == PhaseStatus.RUNNING:
                record.status = status
                record.finished_at = now()
                record.error = PhaseError(type=error_type, message=message)

    def _run_phase(self, name: PhaseName) -> PhaseResult:
        raise_if_interrupted()
        record = self.manifest.phase(name.value)
        section = self.loaded.pipeline.phases.section(name)
        if section is None or not section.enabled:
            why = (
                f"the pipeline has no phases.{name} section"
                if section is None
                else f"phases.{name}.enabled is false"
            )
            return self._finish(name, record, PhaseResult.skipped(why), time.monotonic())
        phase = PHASES[name]()
        record.status = PhaseStatus.RUNNING
        record.started_at = now()
        record.finished_at = None
        record.error = None
        self.save()
        started = time.monotonic()
        trials = section.trials if isinstance(section, TrialsSection) else None
        self.sink(events.PhaseStarted(name.value, trials))
        cluster = phase.cluster(self.loaded.pipeline)
        options = self.options.get(name.value, {})
        if cluster is None and phase.needs_system(self.loaded.pipeline, options):
            self._start_system()
        try:
            if cluster is None:
                result = phase.run(self._context(name, self.system))
            else:
                result = self._run_on_cluster(name, phase, cluster)
        except Interrupted:
            raise
        except HeisenError as exc:
            self._finish_with_error(name, record, exc, started)
            raise
        except Exception as exc:
            crash = PhaseCrashed(f"{name}: heisen failed: {type(exc).__name__}: {exc}")
            crash.__cause__ = exc
            self._finish_with_error(name, record, crash, started)
            raise crash from exc
        return self._finish(name, record, result, started)

    def _context(self, name: PhaseName, system: System | None) -> PhaseContext:
        return PhaseContext(
            loaded=self.loaded,
            manifest=self.manifest,
            system=system,
            seed=self.seed,
            run_dir=self.run_dir,
            emit=self.sink,
            options=self.options.get(name.value, {}),
        )

    def _run_on_cluster(
        self, name: PhaseName, phase: RegisteredPhase, cluster: Cluster
    ) -> PhaseResult:
        """Run the phase on its own system in the cluster, stopped right after on every path."""
        system = self._on_cluster = self._cluster_system(name, cluster)
        try:
            system.start()
            result = self._phase_in_cluster(name, system, self._context(name, system))
        except BaseException:
            self._stop_on_cluster(name, system, cluster, failing=True)
            raise
        self._stop_on_cluster(name, system, cluster, failing=False)
        return result

    def _phase_in_cluster(
        self, name: PhaseName, system: KubeSystem, ctx: PhaseContext
    ) -> PhaseResult:
        """The phase as heisen's agent runs it inside the cluster, its records read back."""
        from heisen.agent import run_in_cluster

        return run_in_cluster(system, name.value, ctx)

    def _cluster_system(self, name: PhaseName, cluster: Cluster) -> KubeSystem:
        """The system in the cluster, labelled with the run; its progress is the phase's."""
        from heisen.system import RUN_LABEL, KubeSystem, RolloutStatus, run_label

        def progress(message: str) -> None:
            self.sink(events.Progress(name.value, message))

        def rollout(s: RolloutStatus) -> None:
            self.sink(
                events.Progress(
                    name.value,
                    f"rollout {s.deployment}: {s.ready}/{s.desired} ready",
                    s.ready,
                    s.desired,
                )
            )

        return KubeSystem(
            self.loaded,
            namespace=cluster.namespace,
            labels={RUN_LABEL: run_label(self.manifest.run.id)},
            limits=cluster.limits,
            kubeconfig=self.loaded.resolve(cluster.kubeconfig) if cluster.kubeconfig else None,
            context=cluster.context,
            agent_image=cluster.agent_image,
            log=progress,
            on_rollout=rollout,
        )

    def _stop_on_cluster(
        self, name: PhaseName, system: System, cluster: Cluster, *, failing: bool
    ) -> None:
        """Delete what the phase ran in the cluster, with signals ignored meanwhile.

        After a failing phase what did not stop is a warning (the phase's own
        error is the one to see); after a passing one it is the phase's error.
        """
        try:
            with signals_shielded():
                problems = system.stop()
        finally:
            self._on_cluster = None
        for problem in problems:
            if not failing and problem.cause is not None:
                raise problem.cause
            what = "delete" if problem.what == f"namespace {cluster.namespace}" else "close"
            self.sink(
                events.Warning(name.value, f"could not {what} {problem.what}: {problem.error}")
            )

    def _finish_with_error(
        self, name: PhaseName, record: PhaseRecord, exc: HeisenError, started: float
    ) -> None:
        """The phase is `error`; what it measured before the error stays in its outputs."""
        if isinstance(exc, PhaseCrashed):
            self._log_traceback(name, exc.__cause__ or exc)
        record.error = PhaseError(type=type(exc).__name__, message=str(exc))
        result = PhaseResult(
            PhaseStatus.ERROR,
            f"error: {exc}",
            outputs=dict(getattr(exc, "outputs", {}) or {}),
            findings=list(getattr(exc, "findings", []) or []),
        )
        self._finish(name, record, result, started)

    def _log_traceback(self, name: str, exc: BaseException) -> None:
        """The traceback of a crash goes to the run's log (redacted), not the terminal."""
        from heisen._redact import redact_text

        lines = traceback.format_exception(exc)
        with (self.run_dir / CRASH_LOG).open("a", encoding="utf-8") as log:
            log.write(redact_text(f"--- {now()} phase {name}\n{''.join(lines)}\n"))

    def _finish(
        self, name: PhaseName, record: PhaseRecord, result: PhaseResult, started: float
    ) -> PhaseResult:
        record.status = result.status
        record.skip_reason = result.skip_reason
        record.inconclusive_reason = result.inconclusive_reason
        record.summary = result.summary
        record.outputs = result.outputs
        record.artifacts = result.artifacts
        if result.findings:
            record.outputs.setdefault(
                "findings", [finding.to_dict() for finding in result.findings]
            )
        record.started_at = record.started_at or now()
        record.finished_at = now()
        record.duration_s = round(time.monotonic() - started, 3)
        self.save()
        self.sink(
            events.PhaseFinished(
                name.value, str(result.status), result.summary, record.duration_s, record.outputs
            )
        )
        return result

    def _start_system(self, *, announce: bool = True) -> System:
        if self.system is not None:
            return self.system
        if announce:
            self.sink(events.SystemStarting("starting the system under test"))
        system = self.system = self._new_system()
        try:
            system.start()
        except BaseException:
            self._stop_system()
            raise
        self.manifest.system = system.describe()
        self.save()
        return system

    def _new_system(self) -> System:
        """The implementation of the system this run drives: processes on this machine."""
        from heisen.system import SystemHandle

        return SystemHandle(
            self.loaded,
            self.run_dir,
            seed=self.seed,
            run_id=self.manifest.run.id,
            log=lambda message: self.sink(events.SystemStarting(message)),
        )

    def _stop_system(self) -> None:
        probes = sys.modules.get("heisen.oracle._python_runner")
        if probes is not None:  # the workers of python: probes, if any ran
            probes.stop_python_probes()
        if self.system is not None:
            self._stopping, self.system = self.system, None
            self._report_teardown(self._stopping.stop())

    def _report_teardown(self, problems: Sequence[TeardownProblem]) -> None:
        """What did not stop cleanly: a warning now, and `teardown:` in the manifest."""
        if not problems:
            return
        self.manifest.teardown += [
            TeardownRecord(what=problem.what, error=problem.error) for problem in problems
        ]
        self.sink(events.TeardownFailed(tuple((p.what, p.error) for p in problems)))

    def _give_up_stopping(self) -> None:
        """Runs on the deadline's thread when an interrupted run is still not stopped."""
        sys.stderr.write(
            f"\nheisen: still not stopped {self._stop_deadline_s:g}s after the interrupt: killing what"
            " it started and exiting. Where each thread was:\n"
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        logging.disable()  # threads that see their processes die must not add tracebacks
        for system in (self.system or self._stopping, self._on_cluster):
            if system is not None:
                system.kill()
        self.manifest.status = RunStatus.INTERRUPTED
        self.manifest.run.finished_at = now()
        self.save()
        sys.stderr.flush()
        os._exit(130)


def default_run_dir(base: Path | None = None) -> Path:
    root = base or Path(os.environ.get("HEISEN_RUNS", ".heisen/runs"))
    return root / new_run_id()
