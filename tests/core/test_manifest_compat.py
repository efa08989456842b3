"""The typed phase outputs read what heisen wrote before them, and write it back unchanged.

`data/manifest-before-typed-outputs.yaml` is the manifest of the ticketing demo
(`examples/ticketing/pipeline.yaml`, all six phases) written by the commit
before the phases built typed outputs: every phase's outputs must parse with
its model, with no key the model does not know, and serialise back to the
same mapping, int for int and float for float. A fresh run must parse too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from heisen.outputs import OUTPUTS_BY_PHASE, LoadFigures, StressOutputs
from heisen.schema import PhaseName
from support import copy_counter, heisen, manifest_of

BEFORE = Path(__file__).parent / "data" / "manifest-before-typed-outputs.yaml"
PHASES = [phase.value for phase in PhaseName]


def _before() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(BEFORE.read_text(encoding="utf-8"))
    return manifest


def same(left: object, right: object, where: str = "outputs") -> list[str]:
    """Where two plain values differ, type included (`1` is not `1.0`, `True` is not `1`)."""
    if type(left) is not type(right):
        return [f"{where}: {left!r} ({type(left).__name__}) != {right!r} ({type(right).__name__})"]
    if isinstance(left, dict) and isinstance(right, dict):
        problems = [f"{where}.{key}: only on one side" for key in set(left) ^ set(right)]
        for key in left.keys() & right.keys():
            problems += same(left[key], right[key], f"{where}.{key}")
        return problems
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return [f"{where}: {len(left)} items != {len(right)}"]
        return [
            p
            for i, (a, b) in enumerate(zip(left, right, strict=True))
            for p in same(a, b, f"{where}[{i}]")
        ]
    return [] if left == right else [f"{where}: {left!r} != {right!r}"]


def test_the_fixture_has_every_phase_with_outputs() -> None:
    phases = _before()["phases"]
    assert list(phases) == PHASES
    assert all(phases[name].get("outputs") for name in PHASES)


@pytest.mark.parametrize("phase", PHASES)
def test_outputs_written_before_parse_and_serialise_unchanged(phase: str) -> None:
    written = _before()["phases"][phase]["outputs"]
    model = OUTPUTS_BY_PHASE[PhaseName(phase)].from_manifest(written)
    assert model.unknown_keys() == []
    again = model.to_manifest()
    assert same(again, written) == []
    # ... and the YAML text too, key order aside
    assert yaml.safe_dump(again, sort_keys=True) == yaml.safe_dump(written, sort_keys=True)


def test_load_figures_read_as_typed_values() -> None:
    stress = StressOutputs.from_manifest(_before()["phases"]["stress"]["outputs"])
    assert stress.trials == 12 and 0 < stress.violations <= stress.trials
    assert stress.ci95[0] <= stress.violation_rate <= stress.ci95[1]
    assert stress.latency_ms.p50 <= stress.latency_ms.p99 <= stress.latency_ms.max
    assert stress.per_invariant["no-oversell"].trials == 12
    assert stress.findings and stress.findings[0].phase == "stress"


def test_absent_keys_stay_absent() -> None:
    """A phase that errored early wrote few keys (or none): they parse, and nothing is added."""
    for phase, model in OUTPUTS_BY_PHASE.items():
        assert model.from_manifest({}).to_manifest() == {}, phase
        assert model.from_manifest(None).to_manifest() == {}, phase
    partial = {"trials": 2, "violations": 0, "violation_rate": 0.0, "bound": None}
    figures = LoadFigures.from_manifest(partial)
    assert figures.to_manifest() == partial
    assert figures.requests == 0 and figures.latency_ms.p99 == 0.0


@pytest.mark.slow
def test_a_fresh_run_parses(tmp_path: Path) -> None:
    counter = copy_counter(tmp_path / "counter")
    run_dir = tmp_path / "run"
    result = heisen("run", str(counter / "pipeline.yaml"), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stderr
    phases = manifest_of(run_dir)["phases"]
    assert phases["stress"]["outputs"]["trials"] == 3
    for phase, record in phases.items():
        written = record.get("outputs", {})
        model = OUTPUTS_BY_PHASE[PhaseName(phase)].from_manifest(written)
        assert model.unknown_keys() == [], phase
        assert same(model.to_manifest(), written) == [], phase


def test_values_built_in_memory_parse_as_their_written_form() -> None:
    """A probe may give a Decimal, a date or an int key: the model holds what the manifest
    would have written for them (their text), not a validation error."""
    from datetime import date
    from decimal import Decimal

    from heisen.outputs import InvariantVerdict

    verdict = InvariantVerdict.from_manifest(
        {
            "name": "n",
            "held": True,
            "message": "",
            "value": {"d": Decimal("1.5"), "t": date(2026, 1, 2), "k": {1: (2, 3)}},
        }
    )
    assert verdict.to_manifest()["value"] == {"d": "1.5", "t": "2026-01-02", "k": {"1": [2, 3]}}
