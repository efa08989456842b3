"""Observe mode on the case study, and what it says when it cannot see: the ticketing
service's oversell ranks first from its own traffic, its fix is reported protected, a request
that uses no dependency is inconclusive, and a bad `observe:` is a located pipeline error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from observing import OBSERVE, TICKETING, predict

from support import heisen, phase_of

pytestmark = pytest.mark.slow


def test_the_buggy_checkout_ranks_first_with_its_commands(tmp_path: Path) -> None:
    shutil.copytree(TICKETING, tmp_path / "ticketing")
    pipeline = tmp_path / "ticketing" / "pipeline.yaml"
    five_endpoints = pipeline.read_text().replace(
        "  requests:\n",
        "  requests:\n    health: {method: GET, path: /health}\n"
        "    missing: {method: GET, path: /events/nosuch}\n",
        1,
    )
    pipeline.write_text(five_endpoints)
    result = predict(pipeline, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    top = result.top
    assert (top["anomaly"], top["request"], top["key"]) == (
        "check-then-act",
        "checkout",
        "inventory:concert",
    )
    assert top["boundary"] == "inventory → redis"
    assert top["endpoint"] == {"method": "POST", "path": "/events/concert/checkout"}
    first, last = top["evidence"]
    assert "GET inventory:concert" in first and "DECRBY inventory:concert" in last
    assert top["seen"] == "5/5" and top["window_ms"] > 0
    # predicted at the stress sweep's sizes, spread like its rounds
    assert list(top["burst_rates"]) == ["2", "4", "8", "16", "32", "64"]
    assert result.outputs["load"] == {"requests": 64, "window_ms": 500.0}
    observed = result.outputs["observed"]
    assert observed["links"]["inventory->redis"] == "redis"
    assert observed["links"]["inventory->postgres"] == "postgres"
    assert observed["links"]["inventory->payments"] == "http"
    checkout = next(r for r in observed["requests"] if r["request"] == "checkout")
    assert checkout["operations"]["inventory->payments"] >= 1
    assert len(checkout["replicas"]) >= 2, "sends reached several replicas"
    assert len(observed["requests"]) == 5
    assert observed["elapsed_s"] < 10, "observing a service's five endpoints takes at most 10 s"
    assert "check-then-act" in result.stderr and "DECRBY inventory:concert" in result.stderr


def test_the_fixed_checkout_is_protected_by_its_lock_and_for_update(tmp_path: Path) -> None:
    result = predict(TICKETING / "pipeline-fixed.yaml", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.outputs["hotspots"] == []
    guards = {
        (p["request"], p.get("key") or p.get("table")): p["protected"]
        for p in result.outputs["protected"]
    }
    assert guards[("checkout", "inventory:concert")] == "the lock lock:event:concert"
    assert guards[("checkout", "orders")].startswith("SELECT ... FOR UPDATE on events")


def test_requests_that_use_no_dependency_are_inconclusive_exit_4(tmp_path: Path) -> None:
    shutil.copytree(OBSERVE, tmp_path / "observe")
    pipeline = tmp_path / "observe" / "counter-buggy.yaml"
    text = pipeline.read_text().replace(
        "  requests:\n", "  requests:\n    health: {method: GET, path: /health}\n", 1
    )
    pipeline.write_text(text.replace("observe: {repeat: 5}", "observe: {requests: [health]}"))
    result = predict(pipeline, tmp_path / "run")
    assert result.returncode == 4, result.stderr[-3000:]
    assert result.status == "inconclusive"
    assert "no dependency operation was decoded" in result.stderr


def test_observing_a_request_the_scenario_lacks_is_a_located_error(tmp_path: Path) -> None:
    shutil.copytree(OBSERVE, tmp_path / "observe")
    pipeline = tmp_path / "observe" / "counter-buggy.yaml"
    text = pipeline.read_text().replace(
        "observe: {repeat: 5}", "observe: {repeat: 5, requests: [incremnt]}"
    )
    pipeline.write_text(text)
    result = predict(pipeline, tmp_path / "run")
    assert result.returncode == 2
    assert "phases.predict.observe.requests[0]" in result.stderr
    assert "did you mean 'increment'" in result.stderr.lower() or "increment" in result.stderr


def test_stress_aimed_at_the_observed_hotspot_bursts_its_request(tmp_path: Path) -> None:
    shutil.copytree(OBSERVE, tmp_path / "observe")
    pipeline = tmp_path / "observe" / "counter-buggy.yaml"
    text = pipeline.read_text().replace("    trials: 3\n", "    trials: 3\n    target: hotspot\n")
    assert "target: hotspot" in text
    pipeline.write_text(text)
    result = heisen("run", str(pipeline), "--run-dir", str(tmp_path / "run"), "--ci", timeout=240)
    assert result.returncode == 1, result.stderr[-3000:]
    stress = phase_of(tmp_path / "run", "stress")
    assert stress["outputs"]["target"]["request"] == "increment"
    assert stress["status"] == "failed"
