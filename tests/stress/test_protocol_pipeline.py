"""`protocol: auto` in a pipeline: `heisen stress` records the protocol of every burst of every trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from heisen.outputs import StressOutputs
from support import heisen, phase_of, write

Server = Any

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: auto
seed: 1
services:
  web: {url: "http://127.0.0.1:PORT"}
scenario:
  requests:
    v: {method: GET, path: /, protocol: auto}
  load:
    - burst: {requests: 5}
    - pause: {during: 1ms}
    - burst: {requests: 3}
phases:
  stress: {trials: 3}
"""


@pytest.mark.parametrize(
    ("fixture", "protocol", "reason"),
    [
        ("h2_server", "h2", "h2: server answered the h2c preface"),
        ("aiohttp_server", "http/1.1", "http/1.1: no h2c: the server answered HTTP/1."),
    ],
)
def test_every_burst_of_every_trial_is_in_the_manifest_with_its_protocol(
    fixture: str,
    protocol: str,
    reason: str,
    h2_server: Server,
    aiohttp_server: Server,
    tmp_path: Path,
) -> None:
    server = {"h2_server": h2_server, "aiohttp_server": aiohttp_server}[fixture]
    pipeline = write(tmp_path, PIPELINE.replace("PORT", str(server.port)))
    result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = phase_of(tmp_path / "run", "stress")["outputs"]
    assert StressOutputs.from_manifest(outputs).unknown_keys() == []
    bursts = outputs["bursts"]
    assert bursts["count"] == 6 and bursts["protocols"] == {protocol: 6}
    assert [line.startswith(reason) for line in bursts["reasons"]] == [True]
    every = [(b["trial"], b["step"], b["requests"], b["protocol"]) for b in bursts["per_burst"]]
    assert every == [
        (trial, step, size, protocol) for trial in (1, 2, 3) for step, size in ((0, 5), (2, 3))
    ]
    spread = bursts["release_spread_ms"]
    assert 0 <= spread["median"] <= spread["p90"] <= spread["max"]
    assert spread["max"] == max(b["release_spread_ms"] for b in bursts["per_burst"])
    assert set(outputs["release_spread_ms"]) == {"median", "max"}, "kept as it was"
    assert outputs["status_codes"] == {"200": 24}
