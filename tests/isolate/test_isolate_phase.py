"""The isolate phase through real runs: link toxics widen latency, stubs replace a dependency."""

import shutil
from functools import partial
from pathlib import Path

import pytest
import yaml

import support
from support import COUNTER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


heisen = partial(support.heisen, timeout=300)


def test_a_latency_toxic_on_the_database_link_slows_every_request(tmp_path):
    shutil.copytree(COUNTER, tmp_path / "counter")
    pipeline = tmp_path / "counter" / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("MODE: buggy", "MODE: fixed")
        + """\
  isolate:
    trials: 3
    toxics:
      - {link: counter->postgres, type: latency, attributes: {latency: 40}}
"""
    )
    result = heisen(
        "run",
        str(pipeline),
        "--run-dir",
        str(tmp_path / "run"),
        "--only",
        "stress",
        "--only",
        "isolate",
    )
    assert result.returncode == 0, result.stderr
    phases = yaml.safe_load((tmp_path / "run" / "manifest.yaml").read_text())["phases"]
    isolate = phases["isolate"]["outputs"]
    assert isolate["toxics"][0]["link"] == "counter->postgres"
    assert 35 <= isolate["toxic_delay_ms"]["counter->postgres"] <= 60  # the 40 ms it was given
    # every increment makes at least three round trips to PostgreSQL, each delayed by 40 ms
    assert isolate["latency_ms"]["p50"] >= 100
    assert phases["stress"]["outputs"]["latency_ms"]["p50"] < isolate["latency_ms"]["p50"]
    assert isolate["amplification"]["baseline"] == 0.0


def test_a_toxic_that_never_acts_makes_isolate_inconclusive(tmp_path):
    shutil.copytree(COUNTER, tmp_path / "counter")
    pipeline = tmp_path / "counter" / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("MODE: buggy", "MODE: fixed")
        + """\
  isolate:
    trials: 2
    toxics:
      - {link: counter->postgres, type: latency, toxicity: 0.0, attributes: {latency: 40}}
"""
    )
    run_dir = tmp_path / "run"
    result = heisen("isolate", str(pipeline), "--run-dir", str(run_dir))
    assert result.returncode == 4, result.stderr
    isolate = yaml.safe_load((run_dir / "manifest.yaml").read_text())["phases"]["isolate"]
    assert isolate["status"] == "inconclusive"
    assert (
        "added none per chunk on average, under half its median of 40 ms"
        in (isolate["inconclusive_reason"])
    )
