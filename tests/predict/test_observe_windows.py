"""The hit-rate simulation of observed windows: wider windows are hit at smaller bursts, a
window never open is never hit, and the sweep's even spacing is a ruler for the window."""

from __future__ import annotations

from heisen.predict._candidates import Candidate, Sighting
from heisen.predict._windows import hit_rate


def candidate(window_s: float, *, anomaly: str = "check-then-act", seen: int = 5) -> Candidate:
    return Candidate(
        anomaly=anomaly,
        request="checkout",
        method="POST",
        path="/checkout",
        link="shop->redis",
        key="stock",
        sightings=[Sighting(window_s, 0.002, ())] * seen,
        attempts=5,
    )


def rate(c: Candidate, requests: int, spread_s: float = 0.5) -> float:
    return hit_rate(c, requests=requests, spread_s=spread_s, cycles=400, seed=7)


def test_even_spacing_is_a_ruler_for_the_window() -> None:
    window = candidate(0.040)  # 40 ms: hit once the spacing (500 ms / N) is below it
    assert rate(window, 8) == 0.0  # 62.5 ms apart
    assert rate(window, 16) == 1.0  # 31.25 ms apart


def test_a_wider_window_is_hit_at_smaller_bursts() -> None:
    narrow, wide = candidate(0.004), candidate(0.100)
    assert [rate(narrow, n) for n in (4, 8, 64, 256)] == [0.0, 0.0, 0.0, 1.0]
    assert [rate(wide, n) for n in (4, 8)] == [0.0, 1.0]


def test_a_window_that_never_opens_is_never_hit_and_one_copy_never_races() -> None:
    assert rate(candidate(0.0), 256) == 0.0
    assert rate(candidate(1.0), 1) == 0.0


def test_bursts_at_once_overlap_any_open_window() -> None:
    assert rate(candidate(0.003), 2, spread_s=0.0) == 1.0


def test_a_pattern_seen_in_fewer_sends_is_hit_less_often() -> None:
    always, rarely = candidate(0.040, seen=5), candidate(0.040, seen=1)
    assert rate(rarely, 16) < rate(always, 16) == 1.0


def test_a_lease_is_hit_only_when_a_section_outlives_it() -> None:
    far = candidate(0.020, anomaly="lease-expiry")
    far.lease_s = 0.100
    close = candidate(0.090, anomaly="lease-expiry")
    close.lease_s = 0.100
    assert rate(far, 64, spread_s=0.0) == 0.0
    assert rate(close, 64, spread_s=0.0) > 0.5
