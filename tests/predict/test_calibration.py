"""Calibration's rules, without a run: what it reads from stress, how zeros and ratios are
judged, the smallest burst's step, the refit of one operation, and the older manifest shape."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from heisen import outputs
from heisen.predict._calibration import (
    Measured,
    Observed,
    Point,
    burst_window_s,
    calibration_of,
    geometric_ratio,
    predict_points,
    refit,
    smallest_burst,
    step_medians_ms,
    target_site,
)
from heisen.predict._model import Architecture

SHOP = """
services:
  shop:
    operations:
      buy:
        endpoint: POST /buy
        body: {qty: 1}
        steps:
          - read: stock
            key: stock
            as: left
            latency: 1ms
            cpu: 1ms
          - check: left >= qty
          - call: window
            latency: {lognormal: {median: 2ms, sigma: 0.3}}
          - write: stock
            key: stock
            op: decrement
            by: qty
            latency: 1ms
resources:
  stock: {kind: database}
  window: {kind: service}
workload:
  arrivals:
    burst: {requests: 16, window: 100ms}
  mix: {shop.buy: 1}
  capacity: {stock: 4}
"""


def stress(**extra: object) -> outputs.StressOutputs:
    figures: dict[str, object] = {
        "trials": 4,
        "violations": 4,
        "violation_rate": 1.0,
        "requests": 64,
        "latency_ms": {
            "p50": 40.0,
            "p75": 50.0,
            "p90": 60.0,
            "p95": 70.0,
            "p99": 80.0,
            "max": 90.0,
        },
        "status_codes": {"201": 64},
        "release_spread_ms": {"median": 1.0, "max": 1.5},
        "per_invariant": {"no-oversell": {"trials": 4, "violations": 4, "violation_rate": 1.0}},
        "sweep": {
            "target": "no-oversell",
            "max": 16,
            "tried": [
                {"requests": 2, "trials": 3, "violations": 0, "reproduced": False},
                {"requests": 4, "trials": 3, "violations": 0, "reproduced": False},
                {"requests": 8, "trials": 3, "violations": 3, "reproduced": True},
            ],
            "smallest_reproducing_load": {"requests": 8, "violation_rate": 1.0},
        },
    }
    figures.update(extra)
    return outputs.StressOutputs.from_manifest(figures)


def calibrate_shop(
    architecture: Architecture,
    figures: outputs.StressOutputs,
    *,
    sizes: list[int],
    cycles: int,
    main_during_s: float | None = None,
) -> tuple[outputs.Calibration, Architecture]:
    """`calibration_of` for the target `no-oversell`, predict's first hotspot, seed 1."""
    return calibration_of(
        architecture,
        figures,
        target="no-oversell",
        sizes=sizes,
        hotspot=None,
        cycles=cycles,
        seed=1,
        run="r",
        main_during_s=main_during_s,
    )


def test_the_points_are_the_main_load_then_each_burst_the_sweep_tried() -> None:
    measured = Measured.from_stress(stress(), "no-oversell", [2, 4, 8, 16])
    assert [(p.source, p.load, p.trials, p.violations) for p in measured.points] == [
        ("stress", 16, 4, 4),
        ("sweep", 2, 3, 0),
        ("sweep", 4, 3, 0),
        ("sweep", 8, 3, 3),
    ]
    assert measured.smallest_observed == 8 and measured.main_load == 16
    assert measured.latency_ms == 40.0 and measured.passed_check == 1.0
    # Another invariant's sweep is not this target's.
    other = Measured.from_stress(stress(), "no-stale-read", [2, 4, 8, 16])
    assert other.points == () and other.sizes == ()


def test_refused_requests_are_taken_as_the_fast_ones() -> None:
    # Half refused: the others' median is the overall 75th percentile.
    measured = Measured.from_stress(
        stress(status_codes={"201": 32, "409": 32}), "no-oversell", [2, 4, 8, 16]
    )
    assert measured.latency_ms == 50.0 and measured.passed_check == 0.5
    # 4 in 5 refused: q = 0.9.
    measured = Measured.from_stress(
        stress(status_codes={"201": 10, "409": 40}), "no-oversell", [2, 4, 8, 16]
    )
    assert measured.latency_ms == 60.0


def load(count: int, trials: int, violations: int) -> Observed:
    return Observed(count, trials, violations, "sweep")


@pytest.mark.parametrize(
    ("predicted", "observed", "within"),
    [
        (0.5, load(8, 4, 2), True),  # 1x
        (1.0, load(8, 4, 2), True),  # 2x
        (1.0, load(8, 4, 1), False),  # 4x
        (0.0, load(8, 4, 0), True),  # both zero
        (0.1, load(8, 3, 0), True),  # expects 0.3 violating trials of 3: none is what one sees
        (0.2, load(8, 3, 0), False),  # expects 0.6: more than half a trial
        (0.0, load(8, 3, 1), False),  # observed a race the model rules out: a miss
    ],
)
def test_a_point_is_within_2x_by_its_ratio_or_by_its_trials_when_one_side_is_zero(
    predicted: float, observed: Observed, within: bool
) -> None:
    assert Point(observed, predicted).within_2x is within


def test_the_ratio_is_the_geometric_mean_over_points_where_both_are_above_zero() -> None:
    points = [Point(load(2, 4, 1), 0.5), Point(load(4, 4, 4), 0.5), Point(load(8, 3, 0), 0.0)]
    assert geometric_ratio(points) == pytest.approx(math.sqrt(2.0 * 0.5))
    assert geometric_ratio([Point(load(2, 3, 0), 0.0)]) is None


def test_the_smallest_burst_is_within_one_step_of_the_sweeps() -> None:
    measured = Measured.from_stress(stress(), "no-oversell", [2, 4, 8, 16])
    assert smallest_burst(measured, {2: 0.0, 4: 0.6, 8: 1.0, 16: 1.0}) == (4, True)
    assert smallest_burst(measured, {2: 0.9, 4: 1.0, 8: 1.0, 16: 1.0}) == (2, False)
    # Predicted nowhere up to 16: one place past the last size, two steps from 8.
    assert smallest_burst(measured, {2: 0.0, 4: 0.0, 8: 0.1, 16: 0.4}) == (None, False)


def test_refit_shares_the_measured_time_among_the_io_steps_keeping_cpu_and_shape(
    build: Callable[[str], Architecture],
) -> None:
    architecture = build(SHOP)
    fitted = refit(architecture, "shop.buy", 9.0)  # 1 ms of CPU, 8 ms of I/O (4x the model)
    assert step_medians_ms(fitted.operations["shop.buy"]) == {
        "1 read stock": 2.0,
        "3 call window": 4.0,
        "4 write stock": 2.0,
    }
    window = fitted.operations["shop.buy"].steps[2].latency
    assert window.kind == "lognormal" and window.b == pytest.approx(0.3)
    assert refit(architecture, "shop.buy", 0.5) is architecture  # less than the CPU alone


def test_a_burst_spreads_as_stress_released_it() -> None:
    # Measured 1.5 ms across 16: the model's uniform window whose expected range is 1.5 ms.
    assert burst_window_s(1.5, 16, 16) * (16 - 1) / (16 + 1) == pytest.approx(1.5e-3)
    assert burst_window_s(1.5, 16, 2) * (2 - 1) / (2 + 1) == pytest.approx(1.5e-3 / 15)


def test_calibration_on_a_wide_window_predicts_the_sweep(
    build: Callable[[str], Architecture],
) -> None:
    calibration, fitted = calibrate_shop(build(SHOP), stress(), sizes=[2, 4, 8, 16], cycles=500)
    assert [(p.load, p.predicted) for p in calibration.points or []] == [
        (16, 1.0),
        (2, 0.0),
        (4, 0.0),
        (8, 1.0),
    ]
    assert calibration.within_2x is True and calibration.ratio == 1.0
    burst = calibration.smallest_reproducing_burst
    assert burst is not None and (burst.predicted, burst.observed) == (8, 8)
    assert fitted is not None


def test_without_a_rate_for_the_target_calibration_says_why(
    build: Callable[[str], Architecture],
) -> None:
    calibration, _ = calibrate_shop(
        build(SHOP), stress(per_invariant={}, sweep=None), sizes=[], cycles=100
    )
    assert calibration.within_2x is False and calibration.points == []
    assert calibration.reason == "stress recorded no rate for no-oversell"


def test_the_older_calibration_shape_still_reads() -> None:
    old = {
        "run": "runs/a",
        "latency_scale": 2.5,
        "compared": [{"phase": "stress", "load": 200, "predicted": 0.3, "observed": 0.1}],
    }
    calibration = outputs.Calibration.from_manifest(old)
    assert calibration.points is None and calibration.compared[0].load == 200
    assert calibration.to_manifest() == old
    assert calibration.unknown_keys() == []


def test_a_sweeps_burst_is_the_hotspots_operation_alone_not_the_traffic_mix(
    build: Callable[[str], Architecture],
) -> None:
    # Half the traffic only looks: a main load of 16 is 8 purchases, but a sweep's burst
    # of 8 sends 8 purchases, which oversells a capacity of 4.
    mixed = SHOP.replace("  mix: {shop.buy: 1}", "  mix: {shop.buy: 0.5, shop.look: 0.5}").replace(
        "resources:",
        "      look:\n        steps:\n          - read: stock\n            key: stock\n"
        "            as: left\n            latency: 1ms\nresources:",
    )
    calibration, _ = calibrate_shop(build(mixed), stress(), sizes=[2, 4, 8, 16], cycles=300)
    assert [(p.source, p.load, p.predicted) for p in calibration.points or []] == [
        ("stress", 16, 1.0),
        ("sweep", 2, 0.0),
        ("sweep", 4, 0.0),
        ("sweep", 8, 1.0),
    ]


def test_a_sweep_with_spread_sends_one_request_every_spread_over_size(
    build: Callable[[str], Architecture],
) -> None:
    # One ticket; the window from the read to the decrement is about 3 ms. Spread over
    # 100 ms, a round of N checkouts comes 100/N ms apart: it oversells once that is shorter.
    architecture = build(SHOP.replace("capacity: {stock: 4}", "capacity: {stock: 1}"))
    measured = Measured.from_stress(stress(), "no-oversell", [2, 4, 8, 16, 32, 64], 0.1)
    site = target_site(architecture, 16, None)
    assert site is not None
    _, rates = predict_points(architecture, site, measured, cycles=300, seed=1)
    assert rates[16] == 0.0 and rates[64] >= 0.5
    assert smallest_burst(measured, rates)[0] in (32, 64)


def test_a_sweep_starts_from_the_architectures_sweep_capacity_when_it_gives_one(
    build: Callable[[str], Architecture],
) -> None:
    # The sweep's setup leaves one in stock: a round of 2 oversells, though 4 are in stock
    # for the main load.
    architecture = build(
        SHOP.replace(
            "capacity: {stock: 4}", "capacity: {stock: 4}\n  sweep: {capacity: {stock: 1}}"
        )
    )
    assert architecture.workload.capacity == {"stock": 4}
    assert architecture.workload.sweep_capacity == {"stock": 1}
    measured = Measured.from_stress(stress(), "no-oversell", [2, 4, 8, 16])
    site = target_site(architecture, 16, None)
    assert site is not None and site.limit == 4
    points, rates = predict_points(architecture, site, measured, cycles=300, seed=1)
    assert rates[2] == 1.0 and rates[4] > 0.9
    # The main load keeps the scenario's capacity: its site's limit is still 4.
    assert next(p.predicted for p in points if p.observed.source == "stress") >= 0.5
    no_sweep_capacity = build(SHOP)
    _, before = predict_points(no_sweep_capacity, site, measured, cycles=300, seed=1)
    assert before[2] == 0.0 and before[4] == 0.0


def test_a_sweep_capacity_on_an_unknown_key_is_refused_with_its_path(
    build: Callable[[str], Architecture],
) -> None:
    from heisen.errors import PipelineError

    with pytest.raises(PipelineError, match=r"workload\.sweep\.capacity\.stok"):
        build(
            SHOP.replace(
                "capacity: {stock: 4}", "capacity: {stock: 4}\n  sweep: {capacity: {stok: 1}}"
            )
        )


def test_link_latencies_fit_their_boundaries_and_the_rest_is_shared_by_the_other_steps(
    build: Callable[[str], Architecture],
) -> None:
    # The proxy on shop->stock measured 3 ms round trips (p90 6 ms); the link to no boundary
    # of the model is left out.
    links = {
        "shop->stock": {"p50": 3.0, "p90": 6.0, "p99": 9.0, "count": 128},
        "shop->postgres": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "count": 10},
    }
    figures = stress(
        latency_ms={"p50": 9.0, "p75": 9.5, "p90": 10.0, "p95": 10.5, "p99": 11.0, "max": 12.0},
        link_latency_ms=links,
    )
    assert set(Measured.from_stress(figures, "no-oversell", []).links_ms) == set(links)
    calibration, fitted = calibrate_shop(build(SHOP), figures, sizes=[2, 4, 8, 16], cycles=100)
    buy = fitted.operations["shop.buy"]
    for index in (0, 3):  # both steps on shop → stock: lognormal(3 ms, ln 2 / z90)
        latency = buy.steps[index].latency
        assert latency.kind == "lognormal" and latency.a == pytest.approx(3e-3)
        assert latency.b == pytest.approx(math.log(2) / 1.2815515655446004)
    # 9 ms measured - 1 ms CPU - 2 x 3 ms on stock leaves 2 ms for the call to window.
    assert step_medians_ms(buy)["3 call window"] == pytest.approx(2.0)
    assert calibration.model is not None
    assert calibration.model.links_ms == {"shop → stock": {"p50": 3.0, "p90": 6.0, "p99": 9.0}}
    assert calibration.model.unattributed_ms == 0.0  # the call to window took what was left
    assert calibration.unknown_keys() == []
    # Without link latencies the stock steps are scaled with the rest, as before.
    _, plain = calibrate_shop(
        build(SHOP),
        stress(latency_ms=figures.latency_ms.to_manifest()),
        sizes=[2, 4, 8, 16],
        cycles=100,
    )
    assert step_medians_ms(plain.operations["shop.buy"])["1 read stock"] == pytest.approx(2.0)


def test_time_no_step_takes_is_recorded_when_every_step_was_fitted_from_its_link(
    build: Callable[[str], Architecture],
) -> None:
    links = {
        "shop->stock": {"p50": 3.0, "p90": 6.0, "p99": 9.0, "count": 128},
        "shop->window": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "count": 64},
    }
    figures = stress(
        latency_ms={"p50": 9.0, "p75": 9.5, "p90": 10.0, "p95": 10.5, "p99": 11.0, "max": 12.0},
        link_latency_ms=links,
    )
    calibration, fitted = calibrate_shop(build(SHOP), figures, sizes=[2, 4, 8, 16], cycles=100)
    assert step_medians_ms(fitted.operations["shop.buy"])["3 call window"] == pytest.approx(1.0)
    assert calibration.model is not None
    assert set(calibration.model.links_ms) == {"shop → stock", "shop → window"}
    assert calibration.model.unattributed_ms == pytest.approx(1.0)  # 9 - 1 CPU - 3 - 1 - 3
    # ... and that time is the service's own, between its calls: spread over the steps as CPU
    before = sum(step.cpu_s for step in build(SHOP).operations["shop.buy"].steps)
    after = sum(step.cpu_s for step in fitted.operations["shop.buy"].steps)
    assert (after - before) * 1e3 == pytest.approx(1.0)


def test_a_main_load_that_was_no_burst_arrives_evenly_over_its_duration(
    build: Callable[[str], Architecture],
) -> None:
    # 16 buys over 10 s are 0.6 s apart: far wider than the ~40 ms window, so none oversells,
    # where the same 16 released at once do.
    no_burst = stress(
        release_spread_ms=None,
        violations=0,
        violation_rate=0.0,
        per_invariant={"no-oversell": {"trials": 4, "violations": 0, "violation_rate": 0.0}},
    )
    spread_out, _ = calibrate_shop(
        build(SHOP),
        no_burst,
        sizes=[2, 4, 8, 16],
        cycles=300,
        main_during_s=10.0,  # without it: the architecture's 16 in 100 ms, which oversell
    )
    main = next(p for p in spread_out.points or [] if p.source == "stress")
    assert (main.load, main.predicted, main.observed) == (16, 0.0, 0.0)
    at_once, _ = calibrate_shop(build(SHOP), stress(), sizes=[2, 4, 8, 16], cycles=300)
    assert next(p for p in at_once.points or [] if p.source == "stress").predicted == 1.0
