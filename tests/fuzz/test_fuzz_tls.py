"""Fuzzing an https:// service: the phase with a pipeline's `tls:`, ad hoc with --cacert.

A real HTTPS service (aiohttp, trustme certificates) whose qty above 1000 is a 500: every
case reaches it over TLS, the finding's curl line carries the CA, its replay speaks TLS
too, and a CA that did not sign the server's certificate is exit 3 naming the problem.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml
from tls_orders_service import OPENAPI, TlsFiles, make_tls_files, serve_https, server_context

import support

heisen = partial(support.heisen, timeout=120)

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: fuzz-tls
seed: 3
services:
  orders:
    url: "{url}"
    tls: {{ca: {ca}}}
scenario:
  requests:
    order: {{method: POST, path: /orders, json: {{qty: 1}}}}
  load:
    - burst: {{requests: 2}}
  timeout: 3s
phases:
  fuzz: {{openapi: openapi.yaml, operation: "POST /orders", cases: 30}}
"""


@pytest.fixture
def files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "certs")


@pytest.fixture
def url(files: TlsFiles) -> Iterator[str]:
    with serve_https(server_context(files.cert, files.key)) as running:
        yield running


def server_errors(failures: list[dict]) -> list[dict]:
    return [f for f in failures if f["outcome"] == "5xx"]


@pytest.mark.slow
def test_the_phase_finds_the_500_over_tls_and_its_curl_and_replay_speak_tls(
    url: str, files: TlsFiles, tmp_path: Path
) -> None:
    support.write(tmp_path, OPENAPI, "openapi.yaml")
    path = support.write(tmp_path, PIPELINE.format(url=url, ca=files.ca))
    run_dir = tmp_path / "run"
    result = heisen("fuzz", str(path), "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    outputs = yaml.safe_load((run_dir / "manifest.yaml").read_text())["phases"]["fuzz"]["outputs"]
    assert outputs["errors"] == {}, "no case failed its TLS handshake"
    (finding,) = server_errors(outputs["failures"])
    curl = shlex.split(finding["curl"])
    assert curl[curl.index("--cacert") + 1] == str(files.ca.resolve())
    assert any(word.startswith(f"{url}/orders") for word in curl)
    replay = shlex.split(finding["replay"])
    assert replay[:3] == ["heisen", "fuzz", "replay"]
    again = heisen(*replay[1:])
    assert again.returncode == 1, again.stdout + again.stderr  # still failing, over TLS
    assert "still failing: 500" in again.stderr


def test_ad_hoc_fuzz_of_an_https_url_with_cacert_finds_the_500(
    url: str, files: TlsFiles, tmp_path: Path
) -> None:
    spec = support.write(tmp_path, OPENAPI, "openapi.yaml")
    run_dir = tmp_path / "runs" / "a"
    result = heisen(
        "fuzz",
        *("--openapi", str(spec), "--url", url, "--cacert", str(files.ca)),
        *("--cases", "30", "--seed", "3", "--run-dir", str(run_dir), "--json"),
    )
    assert result.returncode == 1, result.stderr
    (operation,) = json.loads(result.stdout)["operations"]
    assert operation["errors"] == {}
    (finding,) = server_errors(operation["failures"])
    assert "--cacert" in shlex.split(finding["curl"])
    assert ["--cacert", str(files.ca.resolve())] == shlex.split(operation["rerun"])[-2:]


def test_ad_hoc_fuzz_with_a_ca_that_did_not_sign_the_certificate_is_exit_3(
    url: str, files: TlsFiles, tmp_path: Path
) -> None:
    spec = support.write(tmp_path, OPENAPI, "openapi.yaml")
    result = heisen(
        "fuzz",
        *("--openapi", str(spec), "--url", url, "--cacert", str(files.other_ca)),
        *("--cases", "5", "--run-dir", str(tmp_path / "run")),
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "certificate verify failed" in result.stderr
    assert "--cacert" in result.stderr  # the advice names the flag, not the pipeline key


def test_tls_flags_with_an_http_url_are_a_usage_error(files: TlsFiles, tmp_path: Path) -> None:
    spec = support.write(tmp_path, OPENAPI, "openapi.yaml")
    result = heisen(
        "fuzz",
        *("--openapi", str(spec), "--url", "http://127.0.0.1:9", "--cacert", str(files.ca)),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "https://" in result.stderr
