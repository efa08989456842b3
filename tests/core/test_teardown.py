"""What fails to stop when a run ends is said, not swallowed: a warning event and `teardown:`."""

from __future__ import annotations

import io

import yaml
from rich.console import Console

from heisen import events
from heisen.manifest import RunManifest
from heisen.pipeline import load_pipeline
from heisen.report._terminal import TerminalView
from heisen.runner import PHASES, Runner, select_phases
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
