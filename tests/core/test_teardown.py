"""What fails to stop when a run ends is said, not swallowed: a warning event and `teardown:`."""

from __future__ import annotations

import io

import yaml
from rich.console import Console

from heisen import events
from heisen.errors import SystemUnavailable
from heisen.manifest import PhaseStatus, RunManifest, RunStatus
from heisen.phase import PhaseContext, PhaseResult, PhaseRun
from heisen.pipeline import load_pipeline
from heisen.report._terminal import TerminalView
from heisen.runner import PHASES, Cluster, Runner, select_phases
from heisen.schema import PhaseName
from heisen.system_protocol import TeardownProblem
from support import copy_counter


class StopsBadly:
    """The part of a System the runner drives at the end: a stop that leaves two things behind."""

    def stop(self) -> list[TeardownProblem]:
        return [
            TeardownProblem("postgres", "pg_ctl stop: server did not shut down"),
            TeardownProblem("counter replica 1", "pid 4242 still alive after SIGKILL"),
        ]

    def kill(self) -> None:
        pass


def test_what_did_not_stop_is_a_warning_and_in_the_manifest(tmp_path):
    loaded = load_pipeline(copy_counter(tmp_path / "counter") / "pipeline.yaml")
    seen: list[events.Event] = []
    runner = Runner(loaded, run_dir=tmp_path / "run", phases=[], sink=seen.append)
    runner.system = StopsBadly()  # type: ignore[assignment]
    runner.run()

    warnings = [event for event in seen if isinstance(event, events.TeardownFailed)]
    assert [w.problems for w in warnings] == [
        (
            ("postgres", "pg_ctl stop: server did not shut down"),
            ("counter replica 1", "pid 4242 still alive after SIGKILL"),
        )
    ]
    assert isinstance(seen[-1], events.RunFinished)  # said before the run's end
    written = yaml.safe_load((tmp_path / "run" / "manifest.yaml").read_text())
    assert written["teardown"] == [
        {"what": "postgres", "error": "pg_ctl stop: server did not shut down"},
        {"what": "counter replica 1", "error": "pid 4242 still alive after SIGKILL"},
    ]
    resumed = RunManifest.load(tmp_path / "run")
    assert [record.what for record in resumed.teardown] == ["postgres", "counter replica 1"]

    terminal = io.StringIO()
    TerminalView(Console(file=terminal, width=200, color_system=None), live=False)(warnings[0])
    assert terminal.getvalue().strip() == (
        "warning: did not stop cleanly: postgres: pg_ctl stop: server did not shut down; "
        "counter replica 1: pid 4242 still alive after SIGKILL"
    )


def test_a_clean_stop_writes_no_teardown_key_and_old_manifests_load(tmp_path):
    loaded = load_pipeline(copy_counter(tmp_path / "counter") / "pipeline.yaml")
    seen: list[events.Event] = []
    Runner(loaded, run_dir=tmp_path / "run", phases=[], sink=seen.append).run()
    written = yaml.safe_load((tmp_path / "run" / "manifest.yaml").read_text())
    assert "teardown" not in written
    assert not any(isinstance(event, events.TeardownFailed) for event in seen)
    assert RunManifest.load(tmp_path / "run").teardown == []


def test_phases_are_chosen_by_name_in_run_order():
    assert list(PhaseName) == ["predict", "stress", "fuzz", "isolate", "contain", "chaos"]
    assert list(PHASES) == list(PhaseName)  # every phase is registered, in run order
    assert select_phases(only=["chaos", "stress"]) == [PhaseName.STRESS, PhaseName.CHAOS]
    assert select_phases(start_from="contain", skip=["chaos"]) == [PhaseName.CONTAIN]


class OnCluster:
    """A cluster's system as the runner drives it around one phase: started, then stopped."""

    def __init__(self, problems: list[TeardownProblem]) -> None:
        self.problems = problems
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> list[TeardownProblem]:
        self.calls.append("stop")
        return self.problems

    def kill(self) -> None:
        self.calls.append("kill")


def run_on_cluster(tmp_path, monkeypatch, system: OnCluster, run: PhaseRun):
    """contain with `backend: kubernetes`, its phase `run` given, on `system` instead of a cluster."""
    directory = copy_counter(tmp_path / "counter")
    pipeline = directory / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text()
        + "  contain:\n    trials: 1\n    backend: kubernetes\n    namespace: heisen-x\n"
    )
    clusters: list[Cluster] = []

    def cluster_system(self: Runner, name: PhaseName, cluster: Cluster) -> OnCluster:
        clusters.append(cluster)
        return system

    monkeypatch.setattr(Runner, "_cluster_system", cluster_system)
    # the phase runs here, where the agent would run it in the cluster
    monkeypatch.setattr(Runner, "_phase_in_cluster", lambda self, name, system, ctx: run(ctx))
    seen: list[events.Event] = []
    runner = Runner(
        load_pipeline(pipeline),
        run_dir=tmp_path / "run",
        phases=[PhaseName.CONTAIN],
        sink=seen.append,
    )
    outcome = runner.run()
    assert [c.namespace for c in clusters] == ["heisen-x"]
    assert runner.system is None  # the local system was never started for a cluster-only run
    return outcome, seen


def test_a_phase_on_a_cluster_runs_on_the_system_the_runner_made_and_stops_it_after(
    tmp_path, monkeypatch
):
    system = OnCluster([])
    given: list[object] = []

    def run(ctx: PhaseContext) -> PhaseResult:
        given.append(ctx.system)
        system.calls.append("phase")
        return PhaseResult(PhaseStatus.PASSED, "ok")

    outcome, seen = run_on_cluster(tmp_path, monkeypatch, system, run)
    assert given == [system]
    assert system.calls == ["start", "phase", "stop"]
    assert outcome.error is None
    assert outcome.manifest.phases["contain"].status == PhaseStatus.PASSED
    assert not any(isinstance(e, events.Warning | events.TeardownFailed) for e in seen)


def test_what_did_not_stop_after_a_passing_phase_on_a_cluster_is_its_error(tmp_path, monkeypatch):
    refused = SystemUnavailable("API refused to delete namespace heisen-x: 500")
    system = OnCluster([TeardownProblem.of("namespace heisen-x", refused)])

    outcome, seen = run_on_cluster(
        tmp_path, monkeypatch, system, lambda ctx: PhaseResult(PhaseStatus.PASSED, "ok")
    )
    assert outcome.error is refused
    record = outcome.manifest.phases["contain"]
    assert record.status == PhaseStatus.ERROR
    assert record.error is not None and record.error.type == "SystemUnavailable"
    assert not any(isinstance(e, events.Warning) for e in seen)


def test_what_did_not_stop_after_a_failing_phase_on_a_cluster_is_a_warning(tmp_path, monkeypatch):
    system = OnCluster(
        [
            TeardownProblem.of("namespace heisen-x", SystemUnavailable("API refused")),
            TeardownProblem.of("Kubernetes API client", OSError("bad file descriptor")),
        ]
    )

    def run(ctx: PhaseContext) -> PhaseResult:
        raise SystemUnavailable("cannot initialise postgres in the cluster")

    outcome, seen = run_on_cluster(tmp_path, monkeypatch, system, run)
    assert system.calls == ["start", "stop"]
    assert str(outcome.error) == "cannot initialise postgres in the cluster"
    assert [(e.phase, e.message) for e in seen if isinstance(e, events.Warning)] == [
        ("contain", "could not delete namespace heisen-x: API refused"),
        ("contain", "could not close Kubernetes API client: bad file descriptor"),
    ]
    assert outcome.manifest.teardown == []  # the phase's own teardown, not the run's


def test_a_phase_on_a_cluster_interrupted_still_stops_its_system(tmp_path, monkeypatch):
    system = OnCluster([])

    def run(ctx: PhaseContext) -> PhaseResult:
        raise KeyboardInterrupt

    outcome, _ = run_on_cluster(tmp_path, monkeypatch, system, run)
    assert system.calls == ["start", "stop"]
    assert outcome.manifest.status == RunStatus.INTERRUPTED
    assert outcome.manifest.phases["contain"].status == PhaseStatus.ERROR
