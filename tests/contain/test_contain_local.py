"""The contain phase on this machine: real replicas restarted under real cgroup limits (or the duty cycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from contain_support import (
    CONTAIN,
    cgroups_unwritable,
    heisen,
    manifest_of,
    run_cgroups,
    write_pipeline,
)

from heisen import events
from heisen.errors import UsageError
from heisen.manifest import RunInfo, RunManifest, now
from heisen.phase import PhaseContext
from heisen.pipeline import Resources, load_pipeline

LOAD_KEYS = (
    "trials",
    "violations",
    "violation_rate",
    "ci95",
    "requests",
    "rps",
    "latency_ms",
    "status_codes",
    "errors",
)


@pytest.mark.slow
@pytest.mark.cgroups
def test_contain_under_250m_throttles_and_records_the_contract(
    counter: Path, tmp_path: Path
) -> None:
    reason = cgroups_unwritable()
    if reason is not None:
        pytest.skip(f"no writable cgroup hierarchy here: {reason}")
    pipeline = write_pipeline(counter, {**CONTAIN, "strict": True})
    run_dir = tmp_path / "run"
    result = heisen(
        "run", str(pipeline), "--only", "stress", "--only", "contain", "--run-dir", str(run_dir)
    )
    assert result.returncode == 1, result.stderr  # the buggy counter loses updates: a violation
    contain = manifest_of(run_dir)["phases"]["contain"]
    assert contain["status"] == "failed", contain
    outputs = contain["outputs"]
    for key in LOAD_KEYS:
        assert key in outputs
    assert outputs["limits"] == {"cpu": "250m", "memory": "256Mi"}
    assert outputs["limits_by_service"] == {"counter": {"cpu": "250m", "memory": "256Mi"}}
    assert outputs["enforcement"] == "cgroup"
    throttled = outputs["throttled"]
    assert set(throttled) == {"periods", "throttled_periods", "throttled_s"}
    assert 0 < throttled["throttled_periods"] <= throttled["periods"], throttled
    assert throttled["throttled_s"] > 0
    assert (
        sum(t["throttled"]["throttled_periods"] for t in outputs["per_trial"])
        == throttled["throttled_periods"]
    )
    # a 250m quota lets two replicas use at most ~0.5 core between them (tolerant: the machine is shared)
    assert outputs["cpu_used_s"] <= 0.5 * outputs["wall_s"] * 1.5 + 0.2, outputs
    assert (
        outputs["amplification"]["baseline"]
        == manifest_of(run_dir)["phases"]["stress"]["outputs"]["violation_rate"]
    )
    assert "throttled in" in contain["summary"]
    assert "restoring counter" in result.stderr
    assert run_cgroups(run_dir.name) == []


@pytest.mark.slow
def test_strict_without_cgroups_exits_3(counter: Path, tmp_path: Path) -> None:
    pipeline = write_pipeline(counter, {**CONTAIN, "strict": True, "trials": 1})
    run_dir = tmp_path / "run"
    result = heisen(
        "contain", str(pipeline), "--run-dir", str(run_dir), env={"HEISEN_CGROUPS": "off"}
    )
    assert result.returncode == 3, result.stderr
    assert "strict" in result.stderr and "HEISEN_CGROUPS=off" in result.stderr
    contain = manifest_of(run_dir)["phases"]["contain"]
    assert contain["status"] == "error"
    assert contain["error"]["type"] == "SystemUnavailable"
    assert run_cgroups(run_dir.name) == []


def _context(pipeline: Path, run_dir: Path, system: Any, sink: list[events.Event]) -> PhaseContext:
    loaded = load_pipeline(pipeline)
    manifest = RunManifest(
        run=RunInfo(
            id=run_dir.name,
            pipeline=str(loaded.path),
            pipeline_sha256=loaded.sha256,
            seed=7,
            started_at=now(),
            heisen_version="test",
        ),
        pipeline=loaded.raw,
    )
    return PhaseContext(
        loaded=loaded, manifest=manifest, system=system, seed=7, run_dir=run_dir, emit=sink.append
    )


@pytest.mark.slow
def test_duty_cycle_fallback_warns_and_restores_the_service(
    counter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from heisen import contain
    from heisen.system import SystemHandle

    monkeypatch.setenv("HEISEN_CGROUPS", "off")
    pipeline = write_pipeline(
        counter, {**CONTAIN, "trials": 1, "load": [{"burst": {"requests": 20}}]}
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    seen: list[events.Event] = []
    ctx = _context(pipeline, run_dir, None, seen)
    system = SystemHandle(ctx.loaded, run_dir, seed=7, run_id=run_dir.name)
    try:
        system.start()
        ctx = _context(pipeline, run_dir, system, seen)
        result = contain.run(ctx)
        warnings = [e for e in seen if isinstance(e, events.Warning)]
        assert len(warnings) == 1 and "duty cycle" in warnings[0].message
        assert "memory limits are not enforced" in warnings[0].message
        assert result.outputs["warning"] == warnings[0].message
        assert result.outputs["enforcement"] == "dutycycle"
        assert (
            result.outputs["throttled"]["throttled_periods"] > 0
        )  # the cycle holds the replicas every period
        assert "duty cycle, not cgroups" in result.summary
        assert (
            sum(isinstance(e, events.TrialFinished) for e in seen) == 1
        )  # events still reach the sink
        assert system.resources_of("counter") == Resources()
        assert system.replicas("counter").enforcement.mechanism == "none"
        assert len(system.replicas("counter").ready_endpoints()) == 2
    finally:
        system.stop()


def test_a_contain_section_without_limits_is_a_usage_error(counter: Path, tmp_path: Path) -> None:
    from heisen import contain

    class NoCgroups:  # with cgroups, contain would search for a cpu limit instead
        def cgroups_unavailable_reason(self) -> str:
            return "none here"

    pipeline = write_pipeline(counter, {"trials": 1})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ctx = _context(pipeline, run_dir, NoCgroups(), [])
    with pytest.raises(UsageError, match=r"phases\.contain\.resources"):
        contain.run(ctx)
