"""Chaos against an https:// service: the load and the steady-state `http:` probe speak TLS.

The TLS target tests' counting service (aiohttp, trustme certificates) at a `url:` with
`tls: {ca: ...}`: a short chaos run without faults sends its load and its probes over TLS
and every request is answered; a CA that did not sign the server's certificate is exit 3
naming the problem, before any load.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import heisen, phase_of, write

sys.path.insert(0, str(Path(__file__).parent.parent / "stress"))  # _tls_service

from _tls_service import TlsFiles, TlsService, make_tls_files, serve_tls, server_context

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: chaos-tls
seed: 1
services:
  web:
    url: "{url}"
    tls: {{ca: {ca}}}
scenario:
  requests:
    hit: {{method: POST, path: /hit}}
  load:
    - inject: {{rate: 20, during: 1s}}
invariants:
  - name: every acknowledged hit counted
    http: {{method: GET, path: /count}}
    expect: "status == 200 and body.count >= 1"
phases:
  chaos:
    rate: 30
    duration: 1s
    experiments: []
    probes:
      - {{name: up, http: "GET /health", mode: Edge}}
      - {{name: serving, http: "GET /health", mode: Continuous, interval: 0.3s,
          availability: 1.0}}
"""


@pytest.fixture
def files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "certs")


@pytest.fixture
def service(files: TlsFiles) -> Iterator[TlsService]:
    with serve_tls(server_context(files.cert, files.key)) as running:
        yield running


@pytest.mark.slow
def test_the_chaos_load_and_http_probes_reach_the_service_over_tls(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    path = write(tmp_path, PIPELINE.format(url=service.url, ca=files.ca))
    result = heisen("chaos", str(path), "--run-dir", str(tmp_path / "run"), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = phase_of(tmp_path / "run", "chaos")["outputs"]
    assert outputs["errors"] == {} and outputs["status_codes"] == {"200": outputs["requests"]}
    assert outputs["requests"] > 10
    assert service.counts.hits == outputs["requests"], "every load request went over TLS"
    logged = (tmp_path / "run" / "chaos-load.jsonl").read_text().splitlines()
    assert len(logged) == outputs["requests"]  # every request, for the report's charts
    windows = outputs["steady_state"]
    for window, probe in (("before", "up"), ("during", "serving"), ("after", "up")):
        (line,) = windows[window]["probes"]
        assert (line["name"], line["verdict"], line["failures"]) == (probe, "Pass", 0)
        assert line["evaluations"] >= 1


@pytest.mark.slow
def test_a_ca_that_did_not_sign_the_certificate_is_exit_3_before_the_load(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    path = write(tmp_path, PIPELINE.format(url=service.url, ca=files.other_ca))
    result = heisen("chaos", str(path), "--run-dir", str(tmp_path / "run"), timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "certificate verify failed" in result.stdout + result.stderr
    assert service.counts.hits == 0
