"""Fuzz failures as the reports name them: one per bug, however fuzz grouped the cases."""

from __future__ import annotations

from heisen.report._fuzz_cases import fuzz_failures

ONE_PER_BUG = {
    "failures": [
        {
            "id": "a1",
            "label": "qty: 2147483648 (int32 max + 1)",
            "outcome": "5xx",
            "statuses": [500],
            "detail": "500 on qty",
            "hits": 3,
            "cases": ["a1", "b2", "c3"],
            "curl": "curl -X POST --data-binary @fuzz/a1.json http://127.0.0.1:8080/orders",
            "replay": "heisen fuzz replay .heisen/runs/r1 a1",
            "payload": {"qty": 2147483648},
        }
    ]
}

EVERY_CASE = {
    "failures": [
        {"id": "a1", "label": "qty: 2147483648", "outcome": "5xx", "statuses": [500]},
        {"id": "b2", "label": "qty: -2147483649", "outcome": "5xx", "duplicate_of": "a1"},
    ]
}


def test_a_failure_reached_by_several_cases_is_named_once_with_its_count_and_curl() -> None:
    (failure,) = fuzz_failures(ONE_PER_BUG)
    assert failure.name == "fuzz: qty: 2147483648 (int32 max + 1) → 500"
    assert failure.duplicates == 2
    assert "reached by 2 more case(s): b2, c3" in failure.detail
    assert "curl (from the run directory): curl -X POST" in failure.detail


def test_an_older_manifest_listing_every_case_still_counts_each_bug_once() -> None:
    (failure,) = fuzz_failures(EVERY_CASE)
    assert failure.case_id == "a1" and failure.duplicates == 1
    assert "b2: qty: -2147483649" in failure.detail
