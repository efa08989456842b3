"""Observe mode on the correct twins: the same path, guarded, is reported as protected (with
what guards it) and never ranked as a hotspot."""

from __future__ import annotations

from pathlib import Path

import pytest
from observing import OBSERVE, predict

pytestmark = pytest.mark.slow

# pipeline -> (anomaly, what the protection names)
GUARDED = {
    "counter-correct": ("lost-update", "INCR"),
    "signup-correct": ("duplicate-insert", "ON CONFLICT on the unique index (email)"),
    "catalog-correct": ("stale-cache", "versioned cache write"),
    "jobs-correct": ("lease-expiry", "fencing token"),
    "orders-correct": ("double-effect", "idempotency key"),
}


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_the_correct_twin_is_reported_protected(name: str, tmp_path: Path) -> None:
    anomaly, guard = GUARDED[name]
    result = predict(OBSERVE / f"{name}.yaml", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.status == "passed"
    assert result.outputs["hotspots"] == [], result.outputs["hotspots"]
    reasons = result.protected(anomaly)
    assert any(guard in reason for reason in reasons), result.outputs["protected"]
    assert all(p["evidence"] for p in result.outputs["protected"])
