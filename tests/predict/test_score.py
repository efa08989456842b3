from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy.stats import binomtest

from heisen.errors import UsageError
from heisen.predict._architecture import load_incidents
from heisen.predict._calibrate import calibrate, predicted_latencies
from heisen.predict._model import Anomaly, Incident
from heisen.predict._predict import predict
from heisen.predict._score import SCORE_FORMULA, prior, volatility, wilson

TWO_RACES = """\
services:
  shop:
    replicas: 2
    cpu: 1
    operations:
      buy:
        steps:
          - read: cache
            key: "stock:{item}"
            as: stock
            latency: {lognormal: {median: 1ms, sigma: 0.3}}
          - check: stock >= 1
          - write: cache
            key: "stock:{item}"
            op: decrement
            latency: {lognormal: {median: 1ms, sigma: 0.3}}
      note:
        steps:
          - read: db
            key: "note:{item}"
            as: note
            latency: {lognormal: {median: 1ms, sigma: 0.3}}
          - write: db
            key: "note:{item}"
            op: set
            from: note
            latency: {lognormal: {median: 1ms, sigma: 0.3}}
resources:
  cache: {kind: cache}
  db: {kind: database}
workload:
  arrivals: {burst: {requests: 40, window: 20ms}}
  mix: {shop.buy: 1, shop.note: 1}
  keys: {item: {uniform: 4}}
  capacity: {"stock:{item}": 4}
"""


def test_wilson_matches_known_values() -> None:
    lo, hi = wilson(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.0370, abs=1e-4)
    lo, hi = wilson(50, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    exact = binomtest(50, 100).proportion_ci(method="wilson")
    assert (lo, hi) == (pytest.approx(exact.low), pytest.approx(exact.high))


def test_prior_decays_and_filters_by_anomaly() -> None:
    fresh = Incident("a → b", severity=5, age_s=0.0)
    old = Incident("a → b", severity=5, age_s=90 * 86400.0)
    assert prior([fresh], "a → b", Anomaly.STALE_READ) == pytest.approx(1 - math.exp(-1))
    assert prior([old], "a → b", Anomaly.STALE_READ) == pytest.approx(1 - math.exp(-0.5))
    other = Incident("a → b", severity=5, age_s=0.0, anomaly=Anomaly.LOST_UPDATE)
    assert prior([other], "a → b", Anomaly.STALE_READ) == 0.0
    assert prior([fresh], "a → c", Anomaly.STALE_READ) == 0.0


def test_score_is_bounded_and_documented() -> None:
    assert volatility(1, 1, 5, 1) == pytest.approx(100.0)
    assert volatility(0, 0, 0, 0) == 0.0
    assert "0.50*rate" in SCORE_FORMULA and "prior" in SCORE_FORMULA


def test_incident_priors_change_the_ranking(build) -> None:
    arch = build(TWO_RACES)
    plain = predict(arch, agents=40, cycles=400, seed=2)
    order = [(h.anomaly, h.boundary) for h in plain.hotspots]
    assert set(order) == {
        (Anomaly.CHECK_THEN_ACT, "shop → cache"),
        (Anomaly.LOST_UPDATE, "shop → db"),
    }
    last = plain.hotspots[-1]
    history = [Incident(last.boundary, severity=5, age_s=86400.0, count=5, anomaly=last.anomaly)]
    weighted = predict(arch, history, agents=40, cycles=400, seed=2)
    assert weighted.hotspots[0].anomaly is last.anomaly
    assert weighted.hotspots[0].prior > 0.9


def test_overrides_are_validated(ticketing) -> None:
    with pytest.raises(UsageError, match=r"overrides\.mix: unknown operation"):
        predict(ticketing, agents=10, cycles=10, seed=1, overrides={"mix": {"inventory.nope": 1}})
    with pytest.raises(UsageError, match=r"overrides\.windw"):
        predict(ticketing, agents=10, cycles=10, seed=1, overrides={"windw": "5ms"})


def test_calibration_refits_measured_boundaries(ticketing, example_dir: Path) -> None:
    before = predicted_latencies(ticketing)
    assert before["inventory → payments"]["p50"] == pytest.approx(4.0)
    measured = {
        "inventory -> payments": {"p50": 12.0, "p90": 30.0, "p99": 80.0},
        "redis": {"p50": 0.5},
    }
    after = calibrate(ticketing, measured)
    table = predicted_latencies(after)
    assert table["inventory → payments"]["p50"] == pytest.approx(12.0)
    assert table["inventory → payments"]["p90"] == pytest.approx(30.0, rel=1e-3)
    assert table["inventory → redis"]["p50"] == pytest.approx(0.5)
    assert table["inventory → postgres"] == before["inventory → postgres"]
    slower = predict(
        after, load_incidents(example_dir / "incidents.yaml"), agents=250, cycles=200, seed=1
    )
    assert (
        slower.hotspots[0].window_ms
        > predict(ticketing, agents=250, cycles=200, seed=1).hotspots[0].window_ms
    )
    with pytest.raises(UsageError, match="neither a boundary"):
        calibrate(ticketing, {"inventory → kafka": {"p50": 1.0}})
    with pytest.raises(UsageError, match="below p50"):
        calibrate(ticketing, {"redis": {"p50": 2.0, "p90": 1.0}})
