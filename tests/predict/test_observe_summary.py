"""What observe mode says about traffic it could not read: a connection a tap gave up on is
named in the summary and the outputs, so a ranking over partial traffic never reads as whole."""

from __future__ import annotations

from heisen import outputs
from heisen.predict._observe import Observation, ObservedRequest
from heisen.predict._observed import _observed, _summary
from heisen.system_protocol import DependencyOperation


def observation(lost: dict[str, int]) -> Observation:
    get = DependencyOperation("shop->redis", "redis", 1, 1.001, 1.002, "GET", ("stock",), "read")
    send = ObservedRequest("buy", "POST", "/buy", 0, 1.0, 1.01, 200, 0, (get,))
    return Observation(
        requests=[send], links={"shop->redis": "redis", "shop->db": "postgres"}, lost=lost
    )


def test_connections_a_tap_could_not_read_are_named() -> None:
    seen = observation({"TLS": 2})
    summary = _summary(outputs.PredictOutputs(mode="observe"), seen)
    assert "the taps could not read 2 connection(s): TLS" in summary
    assert _observed(seen).tap_lost == {"TLS": 2}


def test_a_fully_read_observation_says_nothing_of_the_kind() -> None:
    seen = observation({})
    assert "could not read" not in _summary(outputs.PredictOutputs(mode="observe"), seen)
    assert _observed(seen).tap_lost == {}
