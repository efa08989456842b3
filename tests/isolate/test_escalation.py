"""isolate with no toxics: escalation finds the link whose latency reproduces the race.

The wallet (tests/isolate/escalation) applies a deposit twice only when its ledger answers
slower than the wallet's 150 ms client timeout; nothing in its pipeline says so.
"""

import shutil
from functools import partial
from pathlib import Path

import pytest

import support
from support import manifest_of

pytestmark = pytest.mark.slow

WALLET = Path(__file__).resolve().parent / "escalation"

heisen = partial(support.heisen, timeout=150)


def _wallet(tmp_path: Path, *, mode: str = "buggy", isolate: str | None = None) -> Path:
    shutil.copytree(WALLET, tmp_path / "wallet")
    pipeline = tmp_path / "wallet" / "pipeline.yaml"
    text = pipeline.read_text().replace("MODE: buggy", f"MODE: {mode}")
    if isolate is not None:
        text = text[: text.index("  isolate:")] + isolate
    pipeline.write_text(text)
    return pipeline


def test_a_pipeline_naming_no_toxic_finds_the_slow_link(tmp_path: Path) -> None:
    pipeline = _wallet(tmp_path)
    run_dir = tmp_path / "run"
    result = heisen("isolate", str(pipeline), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    manifest = manifest_of(run_dir)
    isolate = manifest["phases"]["isolate"]
    escalation = isolate["outputs"]["escalation"]
    # the smallest condition: every link at 1 and 10 ms held, the ledger's link at 100 ms did not
    assert escalation["reproduced_with"] == "wallet->ledger +100 ms"
    assert escalation["budget_exhausted"] is False
    tried = escalation["tried"]
    last = tried[-1]
    assert (last["condition"], last["violations"], last["reproduced"]) == (
        "wallet->ledger +100 ms",
        1,
        True,
    )
    assert 1 <= last["trials"] <= 3  # it stops at the first trial that reproduces
    assert {t["condition"] for t in tried if t["condition"].endswith(" +10 ms")} >= {
        "wallet->audit +10 ms",
        "wallet->ledger +10 ms",
    }
    assert not any(t["reproduced"] for t in tried[:-1])
    # the measured trials ran under the condition found, and say so
    assert isolate["outputs"]["toxics"][0]["link"] == "wallet->ledger"
    assert isolate["outputs"]["toxics"][0]["attributes"]["median_ms"] == 100
    assert isolate["outputs"]["violations"] >= 1
    assert "reproduced with wallet->ledger +100 ms" in isolate["summary"]
    assert manifest["ladder"]["steps"][0]["condition"] == "wallet->ledger +100 ms"
    replay = isolate["outputs"]["findings"][0]["replay"]
    assert replay.startswith("heisen isolate ")
    assert "wallet->ledger +100 ms" in replay


def test_when_nothing_reproduces_every_condition_tried_is_listed(tmp_path: Path) -> None:
    pipeline = _wallet(
        tmp_path,
        mode="fixed",
        isolate="  isolate:\n    trials: 1\n    escalation: {budget: 100s}\n",
    )
    run_dir = tmp_path / "run"
    result = heisen("isolate", str(pipeline), "--run-dir", str(run_dir))
    isolate = manifest_of(run_dir)["phases"]["isolate"]
    assert result.returncode in (0, 4), result.stdout + result.stderr
    escalation = isolate["outputs"]["escalation"]
    assert escalation["reproduced_with"] is None
    assert escalation["budget_exhausted"] is False
    links = ("ledger->audit", "wallet->audit", "wallet->ledger")
    assert [t["condition"] for t in escalation["tried"]] == [
        f"{link} +{ms} ms" for ms in (1, 10, 100, 500) for link in links
    ]
    assert all(t["trials"] == 1 and not t["reproduced"] for t in escalation["tried"])
    # each says whether it acted: the ledger never calls audit, so a toxic there delays nothing
    acted = {t["condition"]: t["acted"] for t in escalation["tried"]}
    assert acted["ledger->audit +100 ms"] is False
    assert acted["wallet->ledger +100 ms"] is True and acted["wallet->audit +10 ms"] is True
    assert isolate["outputs"]["toxics"] == []
    assert "escalation tried 12 condition(s), none reproduced" in isolate["summary"]


def test_the_escalation_stops_at_its_budget_and_says_so(tmp_path: Path) -> None:
    pipeline = _wallet(
        tmp_path, mode="fixed", isolate="  isolate:\n    trials: 1\n    escalation: {budget: 1s}\n"
    )
    run_dir = tmp_path / "run"
    heisen("isolate", str(pipeline), "--run-dir", str(run_dir))
    isolate = manifest_of(run_dir)["phases"]["isolate"]
    escalation = isolate["outputs"]["escalation"]
    assert escalation["budget_exhausted"] is True
    assert escalation["budget_s"] == 1.0
    assert 1 <= len(escalation["tried"]) < 12
    assert escalation["reproduced_with"] is None
