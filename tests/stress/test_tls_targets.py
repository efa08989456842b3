"""https:// targets: every path that talks to the service speaks TLS with the pipeline's `tls:`.

A real aiohttp service on 127.0.0.1 with certificates made per test (trustme): bursts, a
sustained step and an `http:` invariant all reach it over TLS; a CA that did not sign its
certificate, a client certificate it requires and is not given, are exit 3 naming the TLS
problem; files `tls:` names are checked by `heisen validate`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _h2_servers import make_certificates, start_hypercorn
from _tls_service import TlsFiles, TlsService, make_tls_files, serve_tls, server_context

from heisen.cli._tls_flags import tls_of_flags
from heisen.errors import UsageError
from heisen.outputs import StressOutputs
from support import free_port, heisen, phase_of, write

SERVICE_SCRIPT = Path(__file__).with_name("_tls_service.py")

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: tls
seed: 1
services:
  web:
    url: "URL"
TLS
scenario:
  requests:
    hit: {method: POST, path: /hit, protocol: PROTOCOL}
  load:
    - burst: {requests: 6}
    - constant: {copies: 2, during: 200ms}
invariants:
  - name: every hit counted
    http: {method: GET, path: /count}
    expect: "status == 200 and body.count >= load.hit.ok and body.client_certs == CERTS"
phases:
  stress: {trials: 2}
"""


def pipeline(
    directory: Path,
    url: str,
    tls: str = "",
    *,
    certs: str = "0",
    protocol: str = "http/1.1",
) -> Path:
    text = PIPELINE.replace("URL", url).replace("CERTS", certs).replace("PROTOCOL", protocol)
    return write(directory, text.replace("TLS\n", f"    tls: {tls}\n" if tls else ""))


@pytest.fixture
def files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "certs")


@pytest.fixture
def service(files: TlsFiles) -> Iterator[TlsService]:
    with serve_tls(server_context(files.cert, files.key)) as running:
        yield running


@pytest.fixture
def mtls_service(files: TlsFiles) -> Iterator[TlsService]:
    with serve_tls(server_context(files.cert, files.key, client_ca=files.ca)) as running:
        yield running


def stress(path: Path, run_dir: Path) -> tuple[int, str]:
    result = heisen("stress", str(path), "--run-dir", str(run_dir), timeout=120)
    return result.returncode, result.stdout + result.stderr


def test_bursts_sustained_load_and_the_http_probe_reach_the_service_over_tls(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    path = pipeline(tmp_path, service.url, f"{{ca: {files.ca}}}")
    code, output = stress(path, tmp_path / "run")
    assert code == 0, output
    outputs = phase_of(tmp_path / "run", "stress")["outputs"]
    assert StressOutputs.from_manifest(outputs).unknown_keys() == []
    assert outputs["bursts"]["protocols"] == {"http/1.1": 2}
    assert set(outputs["status_codes"]) == {"200"}
    sent = sum(outputs["status_codes"].values())
    assert sent > 12, "both trials' bursts (6 each) and the constant step's requests"
    assert service.counts.hits == sent, "every request reached the TLS service"


def test_a_ca_given_relative_to_the_pipeline_file_is_found(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    path = pipeline(files.ca.parent, service.url, "{ca: ca.pem}")
    code, output = stress(path, tmp_path / "run")
    assert code == 0, output


def test_a_ca_that_did_not_sign_the_certificate_is_exit_3_naming_the_certificate_problem(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    path = pipeline(tmp_path, service.url, f"{{ca: {files.other_ca}}}")
    code, output = stress(path, tmp_path / "run")
    assert code == 3, output
    assert "certificate verify failed" in output
    assert f"127.0.0.1:{service.port}" in output
    assert service.counts.hits == 0


def test_without_a_ca_the_system_store_does_not_trust_a_test_certificate(
    service: TlsService, tmp_path: Path
) -> None:
    code, output = stress(pipeline(tmp_path, service.url), tmp_path / "run")
    assert code == 3, output
    assert "certificate verify failed" in output


def test_insecure_skips_verification(service: TlsService, tmp_path: Path) -> None:
    code, output = stress(pipeline(tmp_path, service.url, "{insecure: true}"), tmp_path / "run")
    assert code == 0, output
    assert service.counts.hits > 12


def test_a_client_certificate_the_server_requires_is_sent_on_every_connection(
    mtls_service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    tls = f"{{ca: {files.ca}, cert: {files.client_cert}, key: {files.client_key}}}"
    path = pipeline(tmp_path, mtls_service.url, tls, certs="body.count")
    code, output = stress(path, tmp_path / "run")
    assert code == 0, output
    assert mtls_service.counts.hits > 12
    assert mtls_service.counts.client_certs == mtls_service.counts.hits


def test_without_the_client_certificate_the_server_requires_the_run_is_exit_3(
    mtls_service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    path = pipeline(tmp_path, mtls_service.url, f"{{ca: {files.ca}}}")
    code, output = stress(path, tmp_path / "run")
    assert code == 3, output
    assert "TLS" in output and f"127.0.0.1:{mtls_service.port}" in output
    assert mtls_service.counts.hits == 0


def test_protocol_auto_over_tls_asks_alpn_and_bursts_http1_when_the_server_picks_nothing(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    path = pipeline(tmp_path, service.url, f"{{ca: {files.ca}}}", protocol="auto")
    code, output = stress(path, tmp_path / "run")
    assert code == 0, output
    bursts = phase_of(tmp_path / "run", "stress")["outputs"]["bursts"]
    assert bursts["protocols"] == {"http/1.1": 2}
    assert any("ALPN chose nothing" in reason for reason in bursts["reasons"])


def test_replicas_heisen_starts_speak_tls_through_the_front_proxy(
    files: TlsFiles, tmp_path: Path
) -> None:
    text = PIPELINE.replace(
        '    url: "URL"\nTLS\n',
        f"    command: [{sys.executable}, {SERVICE_SCRIPT}, env, {files.cert}, {files.key}]\n"
        f"    tls: {{ca: {files.ca}}}\n",
    )
    path = write(tmp_path, text.replace("CERTS", "0").replace("PROTOCOL", "http/1.1"))
    code, output = stress(path, tmp_path / "run")
    assert code == 0, output
    codes = phase_of(tmp_path / "run", "stress")["outputs"]["status_codes"]
    assert set(codes) == {"200"} and sum(codes.values()) > 12


# ------------------------------------------------------------------ validate


@pytest.mark.parametrize("key", ["ca", "cert", "key"])
def test_validate_names_a_tls_file_that_does_not_exist_at_its_line(
    key: str, files: TlsFiles, tmp_path: Path
) -> None:
    tls = {"ca": "{ca: missing.pem}", "cert": "{cert: missing.pem}"}.get(
        key, f"{{cert: {files.client_cert}, key: missing.pem}}"
    )
    path = pipeline(tmp_path, "https://127.0.0.1:9", tls)
    result = heisen("validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"services.web.tls.{key}" in output and "no such file: missing.pem" in output
    assert "(line 8:" in output


def test_validate_refuses_tls_on_an_http_url_and_a_key_without_its_certificate(
    tmp_path: Path,
) -> None:
    path = pipeline(tmp_path, "http://127.0.0.1:9", "{insecure: true}")
    result = heisen("validate", str(path))
    assert result.returncode == 2
    assert "give an https:// url" in result.stdout + result.stderr
    path = pipeline(tmp_path, "https://127.0.0.1:9", "{key: k.pem}")
    result = heisen("validate", str(path))
    assert result.returncode == 2
    assert "give cert: too" in result.stdout + result.stderr


# ------------------------------------------------------------------ ad hoc


def test_adhoc_https_with_cacert_bursts_and_loads_over_tls(
    service: TlsService, files: TlsFiles
) -> None:
    url = f"{service.url}/hit"
    burst = heisen("stress", "--url", url, "-X", "POST", "--burst", "5", "--cacert", str(files.ca))
    assert burst.returncode == 0, burst.stdout + burst.stderr
    assert service.counts.hits == 5
    sustained = heisen(
        "stress", "--url", url, "-X", "POST", "--concurrency", "2", "--duration", "200ms",
        "--insecure", "--json",
    )  # fmt: skip
    assert sustained.returncode == 0, sustained.stdout + sustained.stderr
    assert service.counts.hits > 5


def test_adhoc_protocol_auto_offers_both_in_alpn(service: TlsService, files: TlsFiles) -> None:
    result = heisen(
        "stress", "--url", f"{service.url}/hit", "-X", "POST", "--burst", "3",
        "--protocol", "auto", "--cacert", str(files.ca), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"used": "http/1.1"' in result.stdout and "ALPN chose nothing" in result.stdout


def test_adhoc_client_certificate(mtls_service: TlsService, files: TlsFiles) -> None:
    url = f"{mtls_service.url}/hit"
    base = ["stress", "--url", url, "-X", "POST", "--burst", "4", "--cacert", str(files.ca)]
    refused = heisen(*base)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "TLS" in refused.stderr
    given = heisen(*base, "--cert", str(files.client_cert), "--key", str(files.client_key))
    assert given.returncode == 0, given.stdout + given.stderr
    assert mtls_service.counts.client_certs == mtls_service.counts.hits == 4


def test_adhoc_wrong_ca_is_exit_3_and_bad_tls_flags_exit_2(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    url = f"{service.url}/hit"
    wrong = heisen("stress", "--url", url, "--burst", "2", "--cacert", str(files.other_ca))
    assert wrong.returncode == 3 and "certificate verify failed" in wrong.stderr
    assert service.counts.hits == 0
    plain = heisen("stress", "--url", f"http://127.0.0.1:{service.port}/", "--burst", "1",
                   "--insecure")  # fmt: skip
    assert plain.returncode == 2 and "https://" in plain.stderr
    cases: list[tuple[dict[str, Any], str]] = [  # the same checks, in this process: exit 2
        ({"cacert": str(tmp_path / "nope.pem")}, "no such file"),
        ({"cacert": str(files.ca), "insecure": True}, "give one of them"),
        ({"key": str(files.client_key)}, "give --cert too"),
        ({"cacert": str(files.key)}, "cannot load the CA file"),
    ]
    for given, said in cases:
        flags = {"cacert": None, "insecure": False, "cert": None, "key": None, **given}
        with pytest.raises(UsageError, match=said):
            settings = tls_of_flags(url, **flags)
            assert settings is not None
            settings.context(("http/1.1",))  # a file that is no CA fails when it is loaded


def test_a_setup_call_over_tls_with_the_wrong_ca_is_exit_3_in_the_pipelines_terms(
    service: TlsService, files: TlsFiles, tmp_path: Path
) -> None:
    text = PIPELINE.replace(
        "  requests:\n", "  setup:\n    - http: {method: POST, path: /hit}\n  requests:\n", 1
    )
    text = text.replace("URL", service.url).replace("CERTS", "0").replace("PROTOCOL", "http/1.1")
    path = write(tmp_path, text.replace("TLS\n", f"    tls: {{ca: {files.other_ca}}}\n"))
    code, output = stress(path, tmp_path / "run")
    assert code == 3, output
    assert "certificate verify failed" in output and "tls: {ca: ...}" in output
    assert service.counts.hits == 0


def test_server_name_is_the_name_checked_on_every_path_when_the_url_is_an_address(
    tmp_path: Path,
) -> None:
    files = make_tls_files(tmp_path / "named", names=("orders.heisen.test",))
    with serve_tls(server_context(files.cert, files.key)) as named:
        mismatch = pipeline(tmp_path / "a", named.url, f"{{ca: {files.ca}}}")
        code, output = stress(mismatch, tmp_path / "a" / "run")
        assert code == 3, output
        assert "certificate verify failed" in output and "server_name" in output
        assert named.counts.hits == 0
        tls = f"{{ca: {files.ca}, server_name: orders.heisen.test}}"
        code, output = stress(pipeline(tmp_path / "b", named.url, tls), tmp_path / "b" / "run")
        assert code == 0, output
        assert named.counts.hits > 12


def test_protocol_auto_over_tls_bursts_h2_when_the_server_picks_it_in_alpn(
    tmp_path: Path,
) -> None:
    certs = make_certificates(tmp_path)
    server = start_hypercorn(tmp_path / "hypercorn", free_port(), certs=certs)
    try:
        text = (
            PIPELINE.replace("path: /count", "path: /")
            .replace("body.count >= load.hit.ok and body.client_certs == CERTS", "load.hit.ok > 0")
            .replace("trials: 2", "trials: 1")
            .replace("URL", f"https://127.0.0.1:{server.port}")
            .replace("TLS\n", f"    tls: {{ca: {certs.ca}}}\n")
            .replace("PROTOCOL", "auto")
        )
        code, output = stress(write(tmp_path, text), tmp_path / "run")
    finally:
        server.process.stop(grace_s=2)
    assert code == 0, output
    outputs = phase_of(tmp_path / "run", "stress")["outputs"]
    assert outputs["bursts"]["protocols"] == {"h2": 1}
    assert any("ALPN chose h2" in reason for reason in outputs["bursts"]["reasons"])
    assert set(outputs["status_codes"]) == {"200"}, "the constant step speaks HTTP/1.1 over TLS"
