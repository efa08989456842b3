"""A request's `protocol:` (and `http2:`, its older spelling): validated, located, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from heisen.errors import PipelineError, Problem
from heisen.pipeline import load_pipeline
from support import heisen, write

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: t
services:
  web: {url: "http://127.0.0.1:8080"}
scenario:
  requests:
    a: {method: GET, path: /a, A_}
    b: {method: GET, path: /b, B_}
  load:
    - burst: {requests: 10, mix: {a: 1, b: 1}}
"""


def pipeline(tmp_path: Path, a: str, b: str = "protocol: http/1.1") -> Path:
    return write(tmp_path, PIPELINE.replace("A_", a).replace("B_", b))


def problems(path: Path) -> list[Problem]:
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    return info.value.problems


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("http2: false", "http2: false", "http/1.1"),
        ("http2: true", "protocol: h2", "h2"),
        ("http2: true, protocol: h2", "http2: true", "h2"),
        ("protocol: auto", "protocol: auto", "auto"),
    ],
)
def test_http2_true_is_protocol_h2_and_http1_is_the_default(
    tmp_path: Path, a: str, b: str, expected: str
) -> None:
    requests = load_pipeline(pipeline(tmp_path, a, b)).pipeline.scenario.requests
    assert requests["a"].protocol == requests["b"].protocol == expected


@pytest.mark.parametrize(
    ("a", "said"),
    [
        ("http2: true, protocol: http/1.1", "http2: true contradicts protocol: http/1.1"),
        ("http2: true, protocol: auto", "http2: true contradicts protocol: auto"),
        ("http2: false, protocol: h2", "http2: false contradicts protocol: h2"),
    ],
)
def test_http2_and_protocol_that_disagree_are_refused_at_http2(
    tmp_path: Path, a: str, said: str
) -> None:
    (found,) = problems(pipeline(tmp_path, a, "protocol: " + a.rpartition(" ")[2]))
    assert (found.path, found.line) == ("scenario.requests.a.http2", 8)
    assert said in found.message and "drop http2:" in found.message


def test_a_burst_of_requests_asking_for_different_protocols_is_refused_at_the_burst(
    tmp_path: Path,
) -> None:
    (found,) = problems(pipeline(tmp_path, "protocol: auto", "protocol: h2"))
    assert (found.path, found.line) == ("scenario.load[0].burst", 11)
    assert "(a: auto, b: h2)" in found.message


PHASE_BURST = """\
apiVersion: heisen/v1
kind: Pipeline
name: t
services:
  web: {url: "http://127.0.0.1:8080"}
scenario:
  requests:
    a: {method: GET, path: /a, protocol: h2}
    b: {method: GET, path: /b}
  load:
    - burst: {requests: 10, request: a}
phases:
  isolate:
    load:
      - burst: {requests: 4, mix: {a: 1, b: 1}}
"""


def test_a_phase_burst_mixing_protocols_is_refused_where_it_is_written(tmp_path: Path) -> None:
    found = problems(write(tmp_path, PHASE_BURST))
    assert [(p.path, p.line) for p in found] == [("phases.isolate.load[0].burst", 15)]
    assert "(a: h2, b: http/1.1)" in found[0].message


def test_heisen_validate_exits_2_naming_the_line(tmp_path: Path) -> None:
    path = pipeline(tmp_path, "http2: true, protocol: http/1.1", "protocol: h2")
    result = heisen("validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "scenario.requests.a.http2 (line 8" in result.stderr


def test_an_unknown_protocol_is_refused_with_the_choices(tmp_path: Path) -> None:
    (found,) = problems(pipeline(tmp_path, "protocol: h3", "protocol: h3"))[:1]
    assert found.path == "scenario.requests.a.protocol"
    assert "'auto', 'http/1.1' or 'h2'" in found.message
