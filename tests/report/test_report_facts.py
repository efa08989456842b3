"""The sentences every report shares: trials a bound needs, percentages that never round down."""

from __future__ import annotations

import pytest

from heisen.report._facts import Bound, evidence_line, format_percent, trials_needed


@pytest.mark.parametrize(
    ("rate_below", "level", "needed"), [(0.01, 0.95, 299), (0.005, 0.99, 919), (0.1, 0.9, 22)]
)
def test_trials_needed_is_the_smallest_n_with_a_small_enough_chance(
    rate_below: float, level: float, needed: int
) -> None:
    assert trials_needed(rate_below, level) == needed
    assert (1 - rate_below) ** needed <= 1 - level < (1 - rate_below) ** (needed - 1)


def test_trials_needed_refuses_rates_and_levels_outside_0_1() -> None:
    assert trials_needed(0.0, 0.95) is None and trials_needed(0.01, 1.0) is None


@pytest.mark.parametrize("upper", [0.02466, 0.02401, 0.1234, 0.00998, 0.3, 0.0000123])
def test_an_upper_bound_is_never_printed_lower_than_it_is(upper: float) -> None:
    text = format_percent(upper, round_up=True)
    shown = float(text.removesuffix("%"))
    assert shown >= upper * 100 * (1 - 1e-12)
    assert shown <= upper * 100 * 1.1 + 1e-12  # and not much higher: two significant digits


def test_percentages_read_as_people_write_them() -> None:
    assert [format_percent(x) for x in (0.01, 0.025, 0.95, 0.999, 0.07, 0.0)] == [
        "1%",
        "2.5%",
        "95%",
        "99.9%",
        "7%",
        "0%",
    ]


def test_a_found_violation_is_not_called_a_bound() -> None:
    bound = Bound("stress", 0.01, 0.95, 37, 0.12, False, 1, "the 5m budget", None)
    assert bound.sentence() == (
        "not proven: 1 violation in 37 trials; the rate is below 12% at 95% confidence "
        "(needed 299 trials without a violation for 1%)"
    )


def test_evidence_values_keep_their_type_and_leave_history_out() -> None:
    evidence = {"body.likes": 87, "load.like.ok": 100, "body.name": "87", "timeline": "p1 |"}
    assert evidence_line(evidence) == 'body.likes=87, load.like.ok=100, body.name="87"'
    long = evidence_line({"body": "x" * 500})
    assert len(long) < 200 and long.endswith("…")
