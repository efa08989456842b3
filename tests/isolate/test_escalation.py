"""isolate with no toxics: escalation finds the link whose latency reproduces the race.

The wallet (tests/isolate/escalation) applies a deposit twice only when its ledger answers
slower than the wallet's 150 ms client timeout; nothing in its pipeline says so.
"""

import shutil
from functools import partial
from pathlib import Path

import pytest

import support
from heisen import outputs
from heisen.isolate._escalate import naming_condition, summary_note
from heisen.ladder import build_ladder
from heisen.manifest import RunManifest
from heisen.phase import Finding
from support import manifest_of

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


FOUND = outputs.Escalation(
    tried=[
        outputs.EscalationTry(condition="wallet->ledger +10 ms", trials=3, reproduced=False),
        outputs.EscalationTry(
            condition="wallet->ledger +100 ms", trials=1, violations=1, reproduced=True
        ),
    ],
    reproduced_with="wallet->ledger +100 ms",
    budget_s=60.0,
    budget_exhausted=False,
)


def test_the_ladder_step_names_the_condition_escalation_found() -> None:
    manifest = RunManifest.model_validate(
        {
            "run": {
                "id": "r1",
                "pipeline": "p.yaml",
                "pipeline_sha256": "0",
                "seed": 1,
                "started_at": "2026-12-01T00:00:00Z",
                "heisen_version": "0",
            },
            "status": "failed",
            "phases": {
                "isolate": {
                    "status": "failed",
                    "outputs": {
                        "per_invariant": {
                            "applied-once": {"violation_rate": 1.0, "ci95": [0.44, 1.0]}
                        },
                        "escalation": FOUND.to_manifest(),
                    },
                }
            },
        }
    )
    ladder = build_ladder(manifest, "applied-once")
    assert ladder is not None
    assert ladder.steps[0].condition == "wallet->ledger +100 ms"
    assert (
        outputs.IsolateOutputs.from_manifest({"escalation": FOUND.to_manifest()}).escalation
        == FOUND
    )


def test_the_summary_and_the_replay_name_the_condition() -> None:
    assert summary_note(FOUND).startswith("reproduced with wallet->ledger +100 ms")
    finding = Finding("isolate", "applied-once", "trial 1", "heisen isolate p.yaml --seed 1")
    (named,) = naming_condition([finding], FOUND)
    assert named.replay is not None
    assert named.replay.startswith("heisen isolate p.yaml --seed 1  # ")
    assert "reproduced with wallet->ledger +100 ms" in named.replay
    none = FOUND.model_copy(update={"reproduced_with": None, "budget_exhausted": True})
    assert summary_note(none) == (
        "escalation tried 2 condition(s), none reproduced; it stopped at its 60s budget; "
        "the trials ran under no toxic"
    )
    assert naming_condition([finding], none) == [finding]
