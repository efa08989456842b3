"""Observe mode on services it has never seen: each buggy service's planted race ranks first,
read from its own traffic, with the commands that show it; nothing else is ranked."""

from __future__ import annotations

from pathlib import Path

import pytest
from observing import OBSERVE, predict

pytestmark = pytest.mark.slow

# pipeline -> (anomaly, request, the key or table the race is on, what the evidence shows)
PLANTED = {
    "counter-buggy": ("lost-update", "increment", "counter:c", ["GET counter:c", "SET counter:c"]),
    "signup-buggy": (
        "duplicate-insert",
        "signup",
        "users",
        ["SELECT id FROM users", "INSERT INTO users"],
    ),
    "catalog-buggy": (
        "stale-cache",
        "read",
        "product:p1",
        ["SELECT", "SET product:p1", "UPDATE products", "DEL product:p1"],
    ),
    "jobs-buggy": (
        "lease-expiry",
        "run",
        "lock:job:nightly",
        ["SET lock:job:nightly", "NX PX 100", "DEL lock:job:nightly"],
    ),
    "orders-buggy": ("double-effect", "order", "/charges", ["POST /charges", "POST /charges"]),
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_the_planted_race_ranks_first(name: str, tmp_path: Path) -> None:
    anomaly, request, where, shown = PLANTED[name]
    result = predict(OBSERVE / f"{name}.yaml", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    top = result.top
    assert (top["anomaly"], top["request"], top.get("key") or top.get("table")) == (
        anomaly,
        request,
        where,
    ), result.outputs["hotspots"]
    evidence = "\n".join(top["evidence"])
    for text in shown:
        assert text in evidence, evidence
    rates = top["burst_rates"]
    assert list(rates) == [str(2**k) for k in range(1, 9)], rates  # 2 .. 256 (agents), no sweep
    assert all(0 <= rate <= 1 for rate in rates.values())
    assert top["endpoint"]["method"] in ("GET", "POST", "PUT")
    assert not result.outputs["protected"] or all(
        p["anomaly"] != anomaly for p in result.outputs["protected"]
    )
    observed = result.outputs["observed"]
    assert observed["elapsed_s"] < 10, observed
    assert all(r["sends"] == 5 for r in observed["requests"])
