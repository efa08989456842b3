from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from oracle_histories import (
    LockedRegister,
    StaleCacheRegister,
    hist,
    run_clients,
    without_call,
)

from heisen.errors import UsageError
from heisen.oracle import HistoryError, Operation, OpType, check, render_timeline, timeline_data

# ------------------------------------------------------------------ register


def test_concurrent_write_and_read_may_see_either_value() -> None:
    for seen in ("null", "1"):
        history = hist(f"""
            1 invoke write 1
            2 invoke read
            1 ok write 1
            2 ok read {seen}
        """)
        assert check(history, "register").valid is True


def test_stale_read_is_found_with_its_minimal_sub_history() -> None:
    history = hist("""
        1 invoke write 1
        1 ok write 1
        2 invoke write 2
        2 ok write 2
        3 invoke read
        3 ok read 2
        3 invoke read
        3 ok read 1
    """)
    result = check(history, "register")
    assert result.valid is False
    (violation,) = result.violations
    assert violation.kind == "stale-read"
    assert violation.minimal
    assert "read → 1" in violation.message and "line 7" in violation.message
    assert [(op.f, op.value) for op in violation.operations if op.type is OpType.INVOKE] == [
        ("write", 1),
        ("write", 2),
        ("read", None),
    ]


def test_read_of_a_value_never_written_or_from_the_future() -> None:
    phantom = check(hist("1 invoke read\n1 ok read 7"), "register")
    assert phantom.valid is False and len(phantom.violations[0].operations) == 2
    future = hist("""
        1 invoke read
        1 ok read 5
        2 invoke write 5
        2 ok write 5
    """)
    assert check(future, "register").valid is False


def test_failed_write_never_took_effect() -> None:
    history = hist("""
        1 invoke write 2
        1 fail write 2
        2 invoke read
        2 ok read 2
    """)
    assert check(history, "register").valid is False


def test_info_write_may_take_effect_later_or_never() -> None:
    base = """
        1 invoke write 1
        1 ok write 1
        2 invoke write 2
        2 info write 2
    """
    assert check(hist(base + "3 invoke read\n3 ok read 2"), "register").valid is True
    assert check(hist(base + "3 invoke read\n3 ok read 1"), "register").valid is True
    late = base + "3 invoke read\n3 ok read 1\n3 invoke read\n3 ok read 2"
    assert check(hist(late), "register").valid is True  # took effect between the reads
    undone = base + "3 invoke read\n3 ok read 2\n3 invoke read\n3 ok read 1"
    assert check(hist(undone), "register").valid is False  # cannot take effect and then undo
    before_invoke = """
        3 invoke read
        3 ok read 2
        2 invoke write 2
        2 info write 2
    """
    assert check(hist(before_invoke), "register").valid is False


def test_pending_invoke_without_completion_counts_as_info() -> None:
    history = hist("""
        1 invoke write 3
        2 invoke read
        2 ok read 3
    """)
    assert check(history, "register").valid is True


def test_keys_are_checked_independently() -> None:
    history = hist("""
        1 invoke write 1 a
        1 ok write 1 a
        2 invoke write 1 b
        2 ok write 1 b
        1 invoke read null b
        1 ok read 1 b
        2 invoke read null a
        2 ok read null a
    """)
    result = check(history, "register")
    assert result.valid is False
    assert [v.key for v in result.violations] == ["a"]
    assert result.stats.keys == 2 and result.stats.operations == 4


def test_cas_register_lost_update_and_valid_cas() -> None:
    lost = hist("""
        1 invoke write 0
        1 ok write 0
        2 invoke cas [0,1]
        2 ok cas [0,1]
        3 invoke cas [0,2]
        3 ok cas [0,2]
    """)
    result = check(lost, "cas-register")
    assert result.valid is False
    assert result.violations[0].kind == "lost-update"
    fine = hist("""
        1 invoke write 0
        1 ok write 0
        2 invoke cas [0,1]
        3 invoke cas [0,2]
        2 ok cas [0,1]
        3 fail cas [0,2]
        1 invoke read
        1 ok read 1
    """)
    assert check(fine, "cas-register").valid is True


def test_operations_outside_the_model_name_their_line() -> None:
    with pytest.raises(HistoryError, match=r"history:1: ") as caught:
        check(hist("1 invoke cas [0,1]\n1 ok cas [0,1]"), "register")
    assert caught.value.line == 1
    with pytest.raises(HistoryError) as bad_cas:
        check(hist("1 invoke write 0\n1 ok write 0\n2 invoke cas 3\n2 ok cas 3"), "cas-register")
    assert bad_cas.value.line == 3
    with pytest.raises(UsageError, match="Did you mean 'register'"):
        check([], "registr")


# ------------------------------------------------------------------ real registers, random runs


def _assert_one_minimal(violation_ops: tuple[Operation, ...], model: str) -> None:
    """Removing any call either makes the history pass, or leaves a read nobody explains."""
    history = list(violation_ops)
    written = {op.value for op in history if op.f == "write"} | {None}
    for op in history:
        if op.type is not OpType.INVOKE:
            continue
        rest = without_call(history, op)
        if check(rest, model, minimize=False).valid:
            continue
        reads = [o.value for o in rest if o.f == "read" and o.type is OpType.OK]
        remaining = {o.value for o in rest if o.f == "write"} | {None}
        assert op.f == "write" and op.value in written
        assert any(value not in remaining for value in reads), (op, rest)


def test_locked_register_histories_are_linearizable(tmp_path: Path) -> None:
    for seed in range(3):
        history = run_clients(LockedRegister(), tmp_path / f"ok{seed}.jsonl", seed=seed)
        result = check(history, "register")
        assert result.valid is True, result.violations
        assert result.stats.operations == 160


def test_stale_cache_register_is_caught_with_minimal_histories(tmp_path: Path) -> None:
    found = None
    for seed in range(5):
        history = run_clients(StaleCacheRegister(), tmp_path / f"bad{seed}.jsonl", seed=seed)
        result = check(history, "register")
        assert result.valid is not None
        if result.valid is False:
            found = result
            break
    assert found is not None, "the stale cache was never caught"
    for violation in found.violations:
        assert violation.minimal
        assert check(list(violation.operations), "register").valid is False
        _assert_one_minimal(violation.operations, "register")


def test_budget_exhausted_gives_unknown_and_never_hangs() -> None:
    lines = [f"{p} invoke write {p}" for p in range(1, 21)]
    lines += ["30 invoke read", "30 ok read 999"]
    started = time.monotonic()
    result = check(
        hist("\n".join(lines) + "\n" + "\n".join(f"{p} ok write {p}" for p in range(1, 21))),
        "register",
        time_budget_s=0.3,
        minimize=False,
    )
    assert time.monotonic() - started < 5.0  # 0.3 s of CPU; at most 3 s of wall time if starved
    assert result.valid is None and result.verdict == "unknown"
    assert result.unknown_keys == (None,)
    capped = check(hist("\n".join(lines)), "register", max_steps=600, minimize=False)
    assert capped.valid is None


# ------------------------------------------------------------------ counter


def test_counter_reads_within_bounds() -> None:
    history = hist("""
        1 invoke add 1
        1 ok add 1
        2 invoke add 5
        3 invoke read
        3 ok read 6
        2 info add 5
        3 invoke read
        3 ok read 1
    """)
    assert check(history, "counter").valid is True


def test_counter_read_below_and_above_bounds() -> None:
    low = check(
        hist("""
        1 invoke add 1
        1 ok add 1
        2 invoke add 1
        2 ok add 1
        3 invoke add 4
        3 ok add 4
        1 invoke read
        1 ok read 2
    """),
        "counter",
    )
    assert low.valid is False
    (violation,) = low.violations
    assert violation.kind == "read-below-bound" and violation.minimal
    assert len(violation.operations) == 4  # the add 4 and the read suffice
    high = check(hist("1 invoke add 2\n1 ok add 2\n1 invoke read\n1 ok read 3"), "counter")
    assert high.violations[0].kind == "read-above-bound"
    failed_add = check(hist("1 invoke add 2\n1 fail add 2\n1 invoke read\n1 ok read 2"), "counter")
    assert failed_add.valid is False


# ------------------------------------------------------------------ set


def test_set_valid_lost_and_unexpected() -> None:
    valid = hist("""
        1 invoke add 1
        1 ok add 1
        2 invoke add 2
        3 invoke read
        3 ok read [1]
        2 info add 2
        3 invoke read
        3 ok read [1,2]
    """)
    assert check(valid, "set").valid is True
    lost = check(
        hist("""
        1 invoke add 1
        1 ok add 1
        2 invoke add 2
        2 ok add 2
        3 invoke read
        3 ok read [2]
    """),
        "set",
    )
    assert [(v.kind, len(v.operations)) for v in lost.violations] == [("lost", 4)]
    assert "element 1" in lost.violations[0].message
    unexpected = check(hist("1 invoke add 1\n1 fail add 1\n2 invoke read\n2 ok read [1,9]"), "set")
    assert sorted(v.kind for v in unexpected.violations) == ["unexpected", "unexpected"]
    vanished = check(
        hist("""
        2 invoke add 2
        3 invoke read
        3 ok read [2]
        3 invoke read
        3 ok read []
    """),
        "set",
    )
    assert [v.kind for v in vanished.violations] == ["lost"]


# ------------------------------------------------------------------ results and timelines


def test_result_to_dict_is_json_ready() -> None:
    history = hist("1 invoke write 1\n1 ok write 1\n2 invoke read\n2 ok read 2")
    data = json.loads(json.dumps(check(history, "register").to_dict()))
    assert data["valid"] is False and data["verdict"] == "invalid" and data["model"] == "register"
    assert set(data["stats"]) == {"operations", "keys", "steps", "seconds"}
    assert data["violations"][0]["operations"][0] == {
        "process": 2,
        "type": "invoke",
        "f": "read",
        "value": None,
        "time": 30,
    }


def test_timeline_renders_lanes_and_data() -> None:
    history = hist("""
        1 invoke write 1
        2 invoke read
        1 ok write 1
        2 ok read 1
        3 invoke write 2
    """)
    text = render_timeline(history, width=60)
    lanes = text.splitlines()
    assert lanes[0].startswith("p1 |[w 1") and lanes[0].endswith("|") and len(lanes[0]) == 60
    assert lanes[2].rstrip("|").endswith(">")  # the pending write runs off the edge
    assert "p2: r 1 (ok, lines 2, 4)" in text
    data = timeline_data(history)
    assert [(d["process"], d["type"], d["start_rank"], d["end_rank"]) for d in data] == [
        (1, "ok", 0, 2),
        (2, "ok", 1, 3),
        (3, "info", 4, None),
    ]
