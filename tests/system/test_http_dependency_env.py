"""An HTTP dependency heisen starts takes `env:` and `health:` as a service does.

Real processes: `_replica_service.py` (which refuses to start without REPLICA and
answers /who with it) as the dependency and as the service, started by SystemHandle.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from heisen.errors import PipelineError
from heisen.pipeline import load_pipeline
from heisen.system import SystemHandle

SERVICE = Path(__file__).parent.parent / "stress" / "_replica_service.py"

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: side-api
dependencies:
  side:
    kind: http
    command: ["{{ python }}", "SERVICE"]
    env: {REPLICA: "{{ seed }}", LIMIT: "{{ env.HEISEN_SIDE_LIMIT | default(\\"2\\") }}"}
    health: HEALTH
services:
  app:
    command: ["{{ python }}", "SERVICE"]
    env: {REPLICA: "{{ replica }}"}
    health: HEALTH
scenario:
  requests:
    who: {method: POST, path: /who}
  load:
    - pause: 10ms
    - burst: {requests: 2}
invariants:
  - {name: fine, http: {path: /health}, expect: "true"}
"""


def write(tmp_path: Path, health: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.replace("SERVICE", str(SERVICE)).replace("HEALTH", health))
    return path


def post(url: str) -> dict[str, int]:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


@pytest.mark.parametrize("health", ["/health", "{path: /health, timeout: 20s}"])
def test_the_dependency_starts_with_its_rendered_env(tmp_path: Path, health: str) -> None:
    loaded = load_pipeline(write(tmp_path, health))
    side = loaded.pipeline.dependencies["side"]
    assert side.health.path == "/health"
    assert side.health.timeout == (20.0 if "timeout" in health else 30.0)
    assert loaded.pipeline.scenario.load[0].pause is not None
    assert loaded.pipeline.scenario.load[0].pause.during == 0.01
    system = SystemHandle(loaded, tmp_path / "run", seed=41, run_id="side")
    try:
        system.start()
        assert post(system.dependency_address("side") + "/who") == {"replica": 41}
        assert post(system.service_url() + "/who") == {"replica": 0}
    finally:
        assert system.stop() == []


def test_env_on_a_dependency_heisen_does_not_start_is_located(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        write(tmp_path, "/health")
        .read_text()
        .replace("    kind: http\n", "    kind: http\n    url: http://127.0.0.1:9/\n")
        .replace('    command: ["{{ python }}", "' + str(SERVICE) + '"]\n    env', "    env", 1)
    )
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    [problem] = info.value.problems
    assert problem.path == "dependencies.side.env"
    assert problem.line == 8
    assert "env: is for a dependency heisen starts with command:" in problem.message
