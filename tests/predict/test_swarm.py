from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest

from heisen.predict._model import Anomaly
from heisen.predict._predict import predict
from heisen.predict._swarm import simulate

CHECKOUT_ONLY = {"inventory.checkout": 1.0}
FIXED_MIX = {
    "inventory.checkout_fixed": 0.8,
    "inventory.view_event": 0.16,
    "inventory.update_event": 0.04,
}

RACES = """\
services:
  api:
    replicas: {replicas}
    cpu: 1
    operations:
      rename:
        steps:
          - read: db
            key: "profile:{{user}}"
            as: profile
            latency: {{lognormal: {{median: 1ms, sigma: 0.5}}}}
          - write: db
            key: "profile:{{user}}"
            op: set
            from: profile
            latency: {{lognormal: {{median: 1ms, sigma: 0.5}}}}
      reserve:
        steps:
          - lock: db
            key: "seat:{{user}}"
            timeout: 20ms
            scope: {scope}
            latency: 100us
          - read: db
            key: "seats:{{user}}"
            as: seats
            latency: 500us
          - check: seats > 0
          - write: db
            key: "seats:{{user}}"
            op: decrement
            latency: 500us
          - unlock: db
            key: "seat:{{user}}"
            latency: 100us
      spend:
        steps:
          - write: db
            key: "credit:{{user}}"
            op: decrement
            by: 2
            latency: 1ms
resources:
  db: {{kind: database}}
workload:
  arrivals: {{burst: {{requests: 60, window: 5ms}}}}
  mix: {{api.rename: 1, api.reserve: 1, api.spend: 1}}
  keys: {{user: {keys}}}
  capacity: {{"seats:{{user}}": 5, "credit:{{user}}": 20}}
"""


def rates(result) -> dict[tuple[str, str], float]:
    return {(o.site.anomaly.value, o.site.operation): o.rate for o in result.outcomes}


def test_same_seed_same_prediction(ticketing) -> None:
    first = predict(ticketing, agents=250, cycles=300, seed=11)
    again = predict(ticketing, agents=250, cycles=300, seed=11)
    strip = lambda p: [h.to_output().to_manifest() for h in p.hotspots]  # noqa: E731
    assert strip(first) == strip(again)
    assert first.smallest_reproducing_load == again.smallest_reproducing_load


def test_different_seed_different_samples(ticketing) -> None:
    mixed = replace(ticketing, workload=replace(ticketing.workload, mix=CHECKOUT_ONLY))
    a = simulate(mixed, requests=104, cycles=400, seed=1)
    b = simulate(mixed, requests=104, cycles=400, seed=2)
    assert a.outcomes[0].window_mean_s != b.outcomes[0].window_mean_s
    assert simulate(mixed, requests=104, cycles=400, seed=1).outcomes == a.outcomes


def test_ticketing_top_hotspot_is_checkout_check_then_act(ticketing) -> None:
    prediction = predict(ticketing, agents=250, cycles=1000, seed=3)
    top = prediction.hotspots[0]
    assert (top.anomaly, top.operation, top.boundary) == (
        Anomaly.CHECK_THEN_ACT,
        "inventory.checkout",
        "inventory → redis",
    )
    assert top.predicted_violation_rate > 0.9
    assert top.endpoint is not None and top.endpoint.to_manifest() == {
        "method": "POST",
        "path": "/events/{event}/checkout",
        "body": {"qty": 1},
    }
    kinds = {(h.anomaly, h.operation) for h in prediction.hotspots}
    assert (Anomaly.STALE_READ, "inventory.update_event") in kinds
    smallest = prediction.smallest_reproducing_load
    assert smallest is not None and smallest.per_operation["inventory.checkout"] > 100
    outputs = prediction.as_outputs().to_manifest()
    contract = {
        "boundary",
        "service",
        "resource",
        "anomaly",
        "score",
        "predicted_violation_rate",
        "ci95",
        "load",
        "operation",
        "endpoint",
        "sensitivity",
    }
    assert contract <= set(outputs["hotspots"][0])
    assert (
        outputs["hotspots"][0]["load"]["requests"] == 250
        and outputs["hotspots"][0]["load"]["window_ms"] == 10.0
    )


def test_burst_of_200_checkouts_oversells_and_the_fix_does_not(ticketing) -> None:
    only = replace(ticketing, workload=replace(ticketing.workload, mix=CHECKOUT_ONLY))
    oversell = rates(simulate(only, requests=200, cycles=500, seed=5))[
        ("check-then-act", "inventory.checkout")
    ]
    assert oversell > 0.9
    fixed = predict(ticketing, agents=250, cycles=500, seed=5, overrides={"mix": FIXED_MIX})
    checkout = [
        h
        for h in fixed.hotspots
        if h.operation == "inventory.checkout_fixed" and h.anomaly is Anomaly.CHECK_THEN_ACT
    ]
    assert checkout and checkout[0].predicted_violation_rate == 0.0
    assert all(h.operation != "inventory.checkout" for h in fixed.hotspots)


def test_rate_grows_with_burst_size(ticketing) -> None:
    only = replace(
        ticketing,
        workload=replace(
            ticketing.workload,
            mix=CHECKOUT_ONLY,
            arrivals=replace(ticketing.workload.arrivals, window_s=0.2),
        ),
    )
    series = [
        rates(simulate(only, requests=n, cycles=400, seed=9))[
            ("check-then-act", "inventory.checkout")
        ]
        for n in (90, 110, 130, 160, 220, 300)
    ]
    assert series[0] == 0.0 and series[-1] > 0.9
    assert all(later >= earlier - 0.05 for earlier, later in itertools.pairwise(series)), series


def test_lost_update_lock_scope_and_negative_counter(build) -> None:
    shared = build(RACES.format(replicas=1, scope="global", keys="{uniform: 1}"))
    found = rates(simulate(shared, requests=60, cycles=300, seed=1))
    assert found[("lost-update", "api.rename")] > 0.9
    assert (
        found[("check-then-act", "api.reserve")] == 0.0
    )  # a global lock serializes the check and the act
    assert found[("negative-counter", "api.spend")] == 1.0  # 20 decrements of 2 against 20
    local = build(RACES.format(replicas=3, scope="replica", keys="{uniform: 1}"))
    assert (
        rates(simulate(local, requests=60, cycles=300, seed=1))[("check-then-act", "api.reserve")]
        > 0.5
    )
    spread = build(RACES.format(replicas=1, scope="global", keys="{uniform: 1000}"))
    spread_rates = rates(simulate(spread, requests=60, cycles=300, seed=1))
    assert spread_rates[("lost-update", "api.rename")] < found[("lost-update", "api.rename")]
    assert spread_rates[("negative-counter", "api.spend")] == 0.0


def test_lock_timeouts_under_a_long_queue(build) -> None:
    text = RACES.format(replicas=1, scope="global", keys="{uniform: 1}").replace(
        "timeout: 20ms", "timeout: 2ms"
    )
    found = rates(simulate(build(text), requests=60, cycles=200, seed=1))
    assert found[("lock-timeout", "api.reserve")] == 1.0


def test_multi_key_counter_matches_single_key_when_one_key_is_hot(build) -> None:
    single = build(RACES.format(replicas=2, scope="replica", keys="{uniform: 1}"))
    many = build(
        RACES.format(replicas=2, scope="replica", keys="{zipf: {s: 10, n: 3}}")
    )  # all but certainly key 0
    a = rates(simulate(single, requests=60, cycles=300, seed=4))[("check-then-act", "api.reserve")]
    b = rates(simulate(many, requests=60, cycles=300, seed=4))[("check-then-act", "api.reserve")]
    assert abs(a - b) < 0.15


def test_performance_smoke(ticketing) -> None:
    started = time.perf_counter()
    prediction = predict(ticketing, agents=2000, cycles=1000, seed=1)
    assert time.perf_counter() - started < 20
    assert Anomaly.CHECK_THEN_ACT in {h.anomaly for h in prediction.hotspots}


@pytest.mark.parametrize("bad", [{"agents": 0}, {"cycles": 0}])
def test_rejects_empty_runs(ticketing, bad) -> None:
    from heisen.errors import UsageError

    with pytest.raises(UsageError):
        predict(ticketing, **{"agents": 10, "cycles": 10, "seed": 1, **bad})


def test_threads_do_not_change_the_result(ticketing) -> None:
    one = simulate(ticketing, requests=300, cycles=4000, seed=8, workers=1)
    two = simulate(ticketing, requests=300, cycles=4000, seed=8, workers=2)
    assert one.outcomes == two.outcomes
