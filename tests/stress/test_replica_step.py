"""A load step with `replica: n` goes straight to that replica, past the round-robin front.

Real processes: `heisen stress` in a subprocess starts two replicas of
`_replica_service.py` (each answers with its own index) behind the front proxy.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from support import heisen

SERVICE = Path(__file__).with_name("_replica_service.py")

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: one-replica
seed: 5
services:
  app:
    command: ["{{ python }}", "SERVICE"]
    replicas: 2
    env: {REPLICA: "{{ replica }}"}
    health: /health
scenario:
  requests:
    aimed: {method: POST, path: /who, history: {f: aimed, key: k, value: response.replica}}
    spread: {method: POST, path: /who, history: {f: spread, key: k, value: response.replica}}
  load:
    - burst: {requests: 20, request: aimed}
      replica: AIM
    - pause: 50ms
    - constant: {copies: 4, during: 200ms, request: aimed}
      replica: AIM
    - burst: {requests: 20, request: spread}
invariants:
  - {name: fine, history: {model: rate, f: spread, limit: 100000, window: 1s}}
phases:
  stress:
    trials: 1
"""


def write(tmp_path: Path, replica: int) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.replace("SERVICE", str(SERVICE)).replace("AIM", str(replica)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("replica", [0, 1])
def test_every_request_of_an_aimed_step_is_served_by_that_replica(
    tmp_path: Path, replica: int
) -> None:
    run_dir = tmp_path / "run"
    result = heisen("stress", str(write(tmp_path, replica)), "--run-dir", str(run_dir), "--ci")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    lines = (run_dir / "stress-history.jsonl").read_text().splitlines()
    served: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for op in map(json.loads, lines):
        if op["type"] == "invoke":
            continue
        assert op["type"] == "ok", op
        served[op["f"]].append((op["replica"], op["value"]))  # recorded / what answered
    assert len(served["aimed"]) >= 20 + 4
    assert set(served["aimed"]) == {(replica, replica)}
    assert {value for _, value in served["spread"]} == {0, 1}  # the front still spreads
    assert all(recorded == value for recorded, value in served["spread"])


def test_a_replica_out_of_range_is_located_at_validate(tmp_path: Path) -> None:
    path = write(tmp_path, 2)
    result = heisen("validate", str(path), columns=1000)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    lines = path.read_text().splitlines()
    first = next(n for n, text in enumerate(lines, 1) if "replica: 2" in text)
    assert f"scenario.load[0].replica (line {first}:" in output, output
    assert "service 'app' has 2 replicas (replica: 0 to 1); there is no replica 2" in output
    assert "scenario.load[2].replica" in output
