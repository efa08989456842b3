"""Chaos verdicts: the enum the phase judges with, and the strings the manifest keeps."""

from __future__ import annotations

import json

from heisen.chaos._data_loss import data_loss
from heisen.chaos._outputs import overall_verdict
from heisen.chaos._rounds import ChaosVerdict
from heisen.oracle import Verdict
from heisen.schema import Invariant

PASS, FAIL, AWAITED = ChaosVerdict.PASS, ChaosVerdict.FAIL, ChaosVerdict.AWAITED


def test_the_manifest_keeps_todays_strings() -> None:
    assert [v.value for v in ChaosVerdict] == ["Pass", "Fail", "Awaited"]
    assert json.dumps({"verdict": FAIL.value}) == '{"verdict": "Fail"}'


def test_the_run_fails_first_then_waits() -> None:
    assert overall_verdict(False, [PASS, PASS, PASS], [PASS, PASS]) is PASS
    assert overall_verdict(False, [PASS, PASS, PASS], [PASS, AWAITED]) is AWAITED
    assert overall_verdict(False, [PASS, FAIL, PASS], [AWAITED]) is FAIL
    assert overall_verdict(True, [PASS, PASS, PASS], [PASS]) is FAIL
    assert overall_verdict(False, [PASS, PASS, PASS], [FAIL, AWAITED]) is FAIL


def _ack(name: str) -> Invariant:
    return Invariant.model_validate(
        {
            "name": name,
            "acknowledged": {"request": "write", "id": "id", "sql": "SELECT id FROM w"},
        }
    )


def test_data_loss_sums_the_acknowledged_verdicts_only() -> None:
    invariants = [_ack("a"), _ack("b")]
    loss = {"acknowledged": 5, "persisted": 4, "lost": 1, "unknown": 2, "lost_ids": [7]}
    verdicts = [
        Verdict("a", False, "", loss),
        Verdict("b", True, "", {**loss, "lost": 0, "persisted": 5, "lost_ids": []}),
        Verdict("other", True, "", {"lost": 99}),
    ]
    assert data_loss(invariants, verdicts).to_manifest() == {
        "acknowledged": 10,
        "persisted": 9,
        "lost": 1,
        "unknown": 4,
        "checked": True,
        "lost_ids": [7],
    }


def test_without_acknowledged_invariants_nothing_was_checked() -> None:
    assert data_loss([], [Verdict("x", True, "")]).to_manifest() == {
        "acknowledged": 0,
        "persisted": 0,
        "lost": 0,
        "unknown": 0,
        "checked": False,
    }


def test_a_run_that_found_nothing_says_why_it_shows_nothing() -> None:
    from heisen.chaos._phase import _vacuity
    from heisen.outputs import ChaosOutputs

    def outputs(experiment: dict[str, object], requests: int = 10) -> ChaosOutputs:
        return ChaosOutputs.from_manifest({"requests": requests, "experiments": [experiment]})

    felt = {"name": "kill", "verdict": "Pass", "injected": {"count": 1}, "requests_in_flight": 3}
    assert _vacuity(outputs(felt), [Verdict("a", True, "")]) is None
    assert _vacuity(outputs({**felt, "verdict": "Awaited"}), []) == (
        "kill did not complete its rounds (verdict Awaited)"
    )
    assert "met no request in flight" in str(
        _vacuity(outputs({**felt, "requests_in_flight": 0}), [])
    )
    assert _vacuity(outputs(felt), [Verdict("h", None, "out of budget")]) == (
        "h could not be decided: out of budget"
    )
    assert _vacuity(outputs(felt, requests=0), []) == "the chaos load sent no request"
