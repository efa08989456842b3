"""The ladder follows one race: `target:` and `severity:` in the pipeline, `ladder:` in the manifest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from test_corpus import heisen

from heisen._stats import mean_with_interval
from heisen.console import make_console
from heisen.ladder import build_ladder, same_race_factor
from heisen.manifest import RunManifest
from heisen.report import markdown, print_summary
from support import COUNTER, ROOT, copy_counter, manifest_of
from support import heisen as heisen_process

TICKETING = ROOT / "examples" / "ticketing"
SEVERITY = "    severity: (logged - n) / load.incr.ok\n"


def _counter(tmp_path: Path, *, invariant_extra: str = "", top: str = "") -> Path:
    target = tmp_path / "counter"
    shutil.copytree(COUNTER, target)
    text = (COUNTER / "pipeline.yaml").read_text()
    text = text.replace("    expect: n == logged\n", "    expect: n == logged\n" + invariant_extra)
    (target / "pipeline.yaml").write_text(text + top)
    return target / "pipeline.yaml"


def _validate(path: Path) -> tuple[int, str]:
    code, output = heisen("validate", str(path))
    return code, " ".join(output.split())


def test_a_target_naming_no_invariant_is_refused_with_its_line(tmp_path: Path) -> None:
    code, output = _validate(_counter(tmp_path, top="target: no-lost-updates\n"))
    assert code == 2
    assert "target (line 35:9)" in output
    assert "no invariant named 'no-lost-updates'" in output
    assert "did you mean 'no-lost-update'?" in output


def test_a_target_and_a_severity_that_name_what_exists_validate(tmp_path: Path) -> None:
    code, output = _validate(
        _counter(tmp_path, invariant_extra=SEVERITY, top="target: no-lost-update\n")
    )
    assert code == 0, output


@pytest.mark.parametrize(
    ("severity", "said"),
    [
        (
            "(logged - nn) / load.incr.ok",
            "invariants[0].severity (line 32",
        ),
        (
            "(logged - nn) / load.incr.ok",
            "'nn' is not a variable of a sql: probe (it gives load, logged, n, rowcount, rows); "
            "did you mean 'n'?",
        ),
        (
            "(logged - n) / load.inc.ok",
            "load.inc: the scenario has no request named 'inc' (load. names one of incr, total); "
            "did you mean 'incr'?",
        ),
        ("(logged - n) / ", "invariants[0].severity (line 32"),
        ("(logged - n) / ", "bad expression"),
    ],
)
def test_a_severity_is_checked_as_expect_is(tmp_path: Path, severity: str, said: str) -> None:
    code, output = _validate(_counter(tmp_path, invariant_extra=f"    severity: {severity}\n"))
    assert code == 2
    assert said in output


def test_a_severity_is_for_probes_only(tmp_path: Path) -> None:
    path = _counter(tmp_path)
    text = path.read_text().replace(
        "invariants:\n", "invariants:\n  - {name: h, history: counter, severity: '1'}\n"
    )
    path.write_text(text)
    code, output = _validate(path)
    assert code == 2
    assert "severity: is for sql:, redis:, http: and python: probes" in output


def test_the_per_operation_rate_is_a_mean_with_a_student_t_interval() -> None:
    figures = mean_with_interval([0.0, 0.1, 0.2])
    assert figures["mean"] == pytest.approx(0.1)
    low, high = figures["ci95"]  # type: ignore[misc]
    assert low == 0.0  # cut at 0: no value is negative
    assert high == pytest.approx(0.1 + 4.303 * 0.1 / 3**0.5, abs=1e-6)
    assert mean_with_interval([0.5]) == {"mean": 0.5, "ci95": None, "trials": 1}
    assert mean_with_interval([0.2, 0.2])["ci95"] == [0.2, 0.2]


def _rates(violations: int, trials: int) -> dict[str, Any]:
    return {"trials": trials, "violations": violations, "violation_rate": violations / trials}


def _manifest(target: str) -> RunManifest:
    """stress sees mostly stale reads, isolate mostly oversells: the two races do not mix."""
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
                "stress": {
                    "status": "failed",
                    "summary": "10/12 trials violated an invariant",
                    "outputs": {
                        **_rates(10, 12),
                        "ci95": [0.55, 0.95],
                        "per_invariant": {
                            "no-oversell": {
                                **_rates(2, 12),
                                "ci95": [0.05, 0.45],
                                "per_operation_rate": {
                                    "mean": 0.01,
                                    "ci95": [0.0, 0.02],
                                    "trials": 12,
                                },
                            },
                            "no-stale-read": {**_rates(10, 12), "ci95": [0.55, 0.95]},
                        },
                    },
                },
                "isolate": {
                    "status": "failed",
                    "summary": "4/8 trials violated an invariant",
                    "outputs": {
                        **_rates(4, 8),
                        "ci95": [0.2, 0.8],
                        "per_invariant": {
                            "no-oversell": {**_rates(4, 8), "ci95": [0.2, 0.8]},
                            "no-stale-read": {**_rates(0, 8), "ci95": [0.0, 0.3]},
                        },
                    },
                },
                "chaos": {
                    "status": "failed",
                    "summary": "no-oversell violated",
                    "outputs": {
                        "invariants": [
                            {"name": "no-oversell", "held": False, "message": "", "value": {}},
                            {"name": "no-stale-read", "held": True, "message": "", "value": {}},
                        ]
                    },
                },
            },
        }
    )
    manifest.ladder = build_ladder(manifest, target)
    return manifest


def test_the_ladder_follows_its_target_and_amplifies_only_on_it() -> None:
    ladder = _manifest("no-oversell").ladder
    assert ladder is not None and ladder.target == "no-oversell"
    steps = [step.model_dump() for step in ladder.steps]
    assert [s["phase"] for s in steps] == ["stress", "isolate", "chaos"]
    assert [s["violation_rate"] for s in steps] == pytest.approx([2 / 12, 0.5, 1.0])
    assert [s["amplification"] for s in steps] == [None, 3.0, 2.0]  # never 0.5 / (10/12)
    assert steps[0]["per_operation_rate"] == {"mean": 0.01, "ci95": [0.0, 0.02], "trials": 12}
    assert all(s["smallest_reproducing_burst"] is None for s in steps)
    other = _manifest("no-stale-read").ladder
    assert other is not None
    # isolate's 0% is measured; chaos's 0/1 amplifies nothing over a rate of 0
    assert [s.amplification for s in other.steps] == [None, 0.0, None]


def test_the_manifest_writes_the_ladder_with_its_nulls(tmp_path: Path) -> None:
    _manifest("no-oversell").save(tmp_path)
    written = manifest_of(tmp_path)["ladder"]
    assert written["target"] == "no-oversell"
    assert set(written["steps"][1]) == {
        "phase",
        "violation_rate",
        "ci95",
        "per_operation_rate",
        "smallest_reproducing_burst",
        "amplification",
        "condition",
    }
    assert written["steps"][1]["per_operation_rate"] is None
    assert RunManifest.load(tmp_path).ladder == _manifest("no-oversell").ladder


def test_the_reports_show_the_targets_ladder_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    manifest = _manifest("no-oversell")
    print_summary(manifest, Path("/runs/r1"), console=make_console(), reports=[])
    out = capsys.readouterr().err
    first = "ladder: no-oversell: stress 17% [5.0\N{EN DASH}45%] · 0.01 per op [0\N{EN DASH}0.02] → isolate 50% [20\N{EN DASH}80%] (3x) → chaos 100% [21\N{EN DASH}100%] (2x)\n"
    assert first in out
    assert "  no-stale-read: stress 83% → isolate 0%\n" in out
    assert out.index(first) < out.index("no-stale-read:")
    assert "  no-oversell:" not in out  # shown once, as the ladder
    text = markdown.render(manifest)
    assert (
        "**Reproduction ladder:** no-oversell: stress 17% \\[5.0\N{EN DASH}45%\\] · 0.01 per op"
        in text
    )
    assert text.index("**Reproduction ladder:**") < text.index("- no-stale-read: stress 83%")


@pytest.mark.slow
def test_a_stress_run_writes_the_targets_ladder(tmp_path: Path) -> None:
    directory = copy_counter(tmp_path / "counter")
    pipeline = directory / "pipeline.yaml"
    text = pipeline.read_text().replace(
        "    expect: n == logged\n", "    expect: n == logged\n" + SEVERITY
    )
    pipeline.write_text(text + "target: no-lost-update\n")
    run_dir = tmp_path / "run"
    result = heisen_process("stress", str(pipeline), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stderr
    ladder = manifest_of(run_dir)["ladder"]
    assert ladder["target"] == "no-lost-update"
    [step] = ladder["steps"]
    assert step["phase"] == "stress" and step["violation_rate"] == 1.0
    assert step["smallest_reproducing_burst"] is None and step["amplification"] is None
    per_operation = step["per_operation_rate"]
    assert per_operation["trials"] == 3
    low, high = per_operation["ci95"]
    assert 0 < per_operation["mean"] <= 1  # lost increments per increment that succeeded
    assert 0 <= low <= per_operation["mean"] <= high
    assert "ladder: no-lost-update: stress 100% [" in " ".join(result.stdout.split())


def test_a_phase_compares_its_rate_with_stress_on_the_same_race_only() -> None:
    manifest = _manifest("no-oversell")
    stress, isolate = (manifest.phases[name].outputs for name in ("stress", "isolate"))
    assert same_race_factor(isolate, stress, "no-oversell") == 3.0  # 50% over 17%
    assert same_race_factor(isolate, stress, "no-stale-read") == 0.0  # 0% over 83%, not 0.6x
    assert same_race_factor(stress, isolate, "no-stale-read") is None  # isolate's 0: no factor
    assert same_race_factor(isolate, {}, "no-oversell") is None


def test_without_target_the_ladder_follows_the_invariant_that_counts_the_top_hotspots_request() -> (
    None
):
    from heisen.pipeline import load_pipeline

    pipeline = load_pipeline(TICKETING / "pipeline.yaml").pipeline.model_copy(
        update={"target": None}
    )
    checkout = {"endpoint": {"method": "POST", "path": "/events/{event}/checkout"}}
    update = {"endpoint": "PUT /events/{event}"}
    # no-oversell's severity counts load.checkout: the checkout hotspot's race
    assert pipeline.ladder_target([checkout]) == "no-oversell"
    # no invariant counts the update request: the first invariant
    assert pipeline.ladder_target([update]) == pipeline.invariants[0].name
    assert pipeline.ladder_target([{"endpoint": "DELETE /nowhere"}]) == pipeline.invariants[0].name
    assert pipeline.ladder_target([]) == pipeline.invariants[0].name
    reordered = pipeline.model_copy(update={"invariants": pipeline.invariants[::-1]})
    # the last invariant, acknowledged-orders-persisted, now comes before no-oversell: its
    # acknowledged.request is checkout
    assert reordered.invariants[1].name == "acknowledged-orders-persisted"
    assert reordered.ladder_target([checkout]) == "acknowledged-orders-persisted"
    assert reordered.ladder_target([]) == "no-stale-read"
