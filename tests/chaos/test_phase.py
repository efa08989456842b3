"""The chaos phase end to end on real systems: verdicts, data loss, rollback on every exit path."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import yaml
from chaos_support import HERE, context, no_faults_left, pipeline_copy

from heisen import chaos, events
from heisen.manifest import PhaseStatus
from heisen.pipeline import load_pipeline
from heisen.system import SystemHandle
from support import heisen

pytestmark = pytest.mark.slow

LATENCY = """    experiments:
      - name: slow-db
        kind: pod-network-latency
        link: ledger->postgres
        start: 1s
        duration: 1.5s
        attributes: {latency: 120}
      - name: hog
        kind: pod-cpu-hog
        service: ledger
        start: 1s
        duration: 1.5s
    probes:
      - {name: health, http: "GET /health", mode: Edge}
      - {name: fast, http: "GET /health", mode: OnChaos, interval: 0.25s, latency_p99: 100ms}
      - {name: up, http: "GET /health", mode: Continuous, interval: 0.5s, availability: 0.9}
      - {name: writes, invariant: acknowledged-writes-persist, mode: EOT}
"""


def with_latency(tmp_path: Path) -> Path:
    text = (HERE / "ledger.yaml").read_text()
    head = text[: text.index("    experiments:")]
    return pipeline_copy(tmp_path, "ledger.yaml", **{text[len(head) :]: LATENCY})


def started(path: Path, run_dir: Path) -> SystemHandle:
    system = SystemHandle(load_pipeline(path), run_dir, seed=5, run_id=run_dir.name)
    system.start()
    return system


def test_probe_modes_windows_and_verdicts(tmp_path):
    path = with_latency(tmp_path)
    system = started(path, tmp_path / "run")
    try:
        result = chaos.run(context(path, system, tmp_path / "run"))
        no_faults_left(system)
    finally:
        system.stop()
    out = result.outputs
    state = out["steady_state"]
    assert state["before"]["verdict"] == "Pass" and [
        p["name"] for p in state["before"]["probes"]
    ] == ["health"]
    assert {p["name"] for p in state["after"]["probes"]} == {"health", "writes"}
    during = {p["name"]: p for p in state["during"]["probes"]}
    assert during["up"]["verdict"] == "Pass" and during["up"]["evaluations"] >= 5
    # OnChaos runs only while a fault is active (1.5 s of 4 s), and 120 ms per DB round trip breaks its p99
    assert 1 <= during["fast"]["evaluations"] <= 8 and during["fast"]["verdict"] == "Fail"
    verdicts = {e["name"]: e["verdict"] for e in out["experiments"]}
    assert verdicts == {"slow-db": "Fail", "hog": "Fail"} and out["verdict"] == "Fail"
    assert result.status == PhaseStatus.FAILED
    assert out["data_loss"]["lost"] == 0 and out["data_loss"]["acknowledged"] > 100
    injected = [e for e in out["timeline"] if e["event"] == "inject"]
    removed = [e for e in out["timeline"] if e["event"] == "removed"]
    assert len(injected) == 2 and len(removed) == 2
    assert all(1.0 <= e["t_s"] - out["timeline"][0]["t_s"] <= 2.0 for e in injected)


@pytest.mark.parametrize("how", ["error", "sigint"])
def test_every_fault_is_removed_when_the_phase_is_cut_short(tmp_path, how):
    path = with_latency(tmp_path)
    system = started(path, tmp_path / "run")

    def cut(event: events.Event) -> None:
        if (
            isinstance(event, events.Progress)
            and "hog" in event.message
            and "slow-db" in event.message
        ):
            if how == "sigint":
                # on this thread, so that its handler runs before the raise below
                signal.raise_signal(signal.SIGINT)
            raise RuntimeError("a handler failed mid-chaos")

    expected = KeyboardInterrupt if how == "sigint" else RuntimeError
    # Ctrl-C as a terminal delivers it (a test runner's worker may have set SIGINT aside)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(expected):
            chaos.run(context(path, system, tmp_path / "run", emit=cut))
        no_faults_left(system)
        assert all(i.ready and i.alive for i in system.replicas("ledger").replicas_info())
    finally:
        signal.signal(signal.SIGINT, previous)
        system.stop()


@pytest.mark.parametrize(
    ("mode", "status"), [("safe", PhaseStatus.PASSED), ("lossy", PhaseStatus.FAILED)]
)
def test_acknowledged_writes_lost_by_a_killed_replica_fail_the_phase(tmp_path, mode, status):
    path = pipeline_copy(tmp_path, "ledger.yaml", **{"MODE: safe": f"MODE: {mode}"})
    system = started(path, tmp_path / "run")
    try:
        result = chaos.run(context(path, system, tmp_path / "run"))
    finally:
        system.stop()
    loss = result.outputs["data_loss"]
    assert result.status == status, result.summary
    assert loss["acknowledged"] + loss["unknown"] == result.outputs["requests"]
    assert loss["persisted"] + loss["lost"] == loss["acknowledged"]
    if mode == "safe":
        assert loss["lost"] == 0
    else:
        assert loss["lost"] > 0 and result.findings[0].name == "acknowledged-writes-persist"
    kills = result.outputs["experiments"][0]["injected"]
    assert kills["count"] == 2 and len(kills["targets"]) >= 1


@pytest.mark.parametrize(("mode", "code"), [("buggy", 1), ("fixed", 0)])
def test_counter_lost_update_under_chaos_exit_codes_and_manifest(tmp_path, mode, code):
    target = tmp_path / "tests"
    shutil.copytree(HERE.parent / "core" / "counter", target / "core" / "counter")
    (target / "chaos").mkdir()
    text = (HERE / "counter.yaml").read_text().replace("MODE: buggy", f"MODE: {mode}")
    (target / "chaos" / "counter.yaml").write_text(text)
    run_dir = tmp_path / "run"
    result = heisen(
        "chaos", str(target / "chaos" / "counter.yaml"), "--run-dir", str(run_dir), "--ci"
    )
    assert result.returncode == code, result.stdout[-3000:] + result.stderr[-3000:]
    phase = yaml.safe_load((run_dir / "manifest.yaml").read_text())["phases"]["chaos"]
    out = phase["outputs"]
    assert set(out) >= {
        "trials",
        "violations",
        "violation_rate",
        "ci95",
        "requests",
        "rps",
        "latency_ms",
        "status_codes",
        "errors",
        "experiments",
        "steady_state",
        "data_loss",
        "timeline",
    }
    assert out["trials"] == 1 and out["violations"] == (1 if mode == "buggy" else 0)
    assert set(out["data_loss"]) >= {"acknowledged", "persisted", "lost", "unknown"}
    assert set(out["steady_state"]) == {"before", "during", "after"}
    assert all({"name", "kind", "injected", "verdict"} <= set(e) for e in out["experiments"])
    assert all({"t_s", "event", "detail"} <= set(e) for e in out["timeline"])
    assert out["steady_state"]["after"]["verdict"] == ("Fail" if mode == "buggy" else "Pass")


def test_a_probe_the_pipeline_got_wrong_is_an_error_not_a_failed_steady_state(tmp_path):
    """A typo in a probe's expect: fails every window; that must be exit 2, never "the race is real"."""
    target = tmp_path / "tests"
    shutil.copytree(HERE.parent / "core" / "counter", target / "core" / "counter")
    (target / "chaos").mkdir()
    text = (HERE / "counter.yaml").read_text().replace("MODE: buggy", "MODE: fixed")
    text = text.replace(
        "invariants:\n",
        'invariants:\n  - name: typo\n    sql: "SELECT * FROM counter"\n    expect: valu == 1\n',
    )
    text = text.replace(
        "    probes:\n", "    probes:\n      - {name: typo-probe, invariant: typo, mode: SOT}\n"
    )
    (target / "chaos" / "counter.yaml").write_text(text)
    run_dir = tmp_path / "run"
    result = heisen(
        "chaos", str(target / "chaos" / "counter.yaml"), "--run-dir", str(run_dir), "--ci"
    )
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    phase = yaml.safe_load((run_dir / "manifest.yaml").read_text())["phases"]["chaos"]
    assert phase["status"] == "error"
    assert "typo-probe could not be evaluated (before the faults)" in phase["error"]["message"]
