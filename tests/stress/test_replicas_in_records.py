"""Records know the replica that served them: the front proxy remembers which upstream each
client connection got, and the scenario engine reads it after every trial.

Real processes throughout: the proxy daemon, three replicas of `_replica_service.py` that
answer with their own index, `heisen stress` in a subprocess.
"""

from __future__ import annotations

import json
import socket
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from heisen.system._process import spawn
from heisen.system._proxy_client import start_proxy_daemon
from support import free_port, heisen, wait_for_port

SERVICE = Path(__file__).with_name("_replica_service.py")

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: replicas
seed: 11
services:
  app:
    command: ["{{ python }}", "SERVICE"]
    replicas: 3
    env: {REPLICA: "{{ replica }}", LIMIT: "3"}
    health: {path: /health, timeout: 20s}
scenario:
  requests:
REQUESTS
  load:
LOAD
invariants:
INVARIANTS
phases:
  stress:
    trials: 2
    workers: 2
"""


def stress(tmp_path: Path, requests: str, load: str, invariants: str) -> tuple[int, Path, str]:
    text = PIPELINE.replace("SERVICE", str(SERVICE))
    text = text.replace("REQUESTS", requests).replace("LOAD", load)
    tmp_path.mkdir(parents=True, exist_ok=True)
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(text.replace("INVARIANTS", invariants))
    run_dir = tmp_path / "run"
    result = heisen("stress", str(pipeline), "--run-dir", str(run_dir), "--ci")
    return result.returncode, run_dir, result.stdout + result.stderr


def stress_outputs(run_dir: Path) -> dict[str, Any]:
    manifest = yaml.safe_load((run_dir / "manifest.yaml").read_text())
    return manifest["phases"]["stress"]  # type: ignore[no-any-return]


def history(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "stress-history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


WHO = """\
    h1: {method: POST, path: /who, json: {n: 1}, history: {f: h1, key: k, value: response.replica}}
    h2:
      method: POST
      path: /who
      http2: true
      json: {n: 2}
      history: {f: h2, key: k, value: response.replica}
    closed: {method: POST, path: /who, history: {f: closed, key: k, value: response.replica}}
    open: {method: POST, path: /who, history: {f: open, key: k, value: response.replica}}"""

WHO_LOAD = """\
    - burst: {requests: 30, request: h1}
    - burst: {requests: 300, request: h2}  # 100 streams a connection: 3 connections
    - constant: {copies: 6, during: 300ms, request: closed}
    - inject: {rate: 200, during: 300ms, request: open}"""


@pytest.mark.slow
def test_every_operation_names_the_replica_that_answered_it(tmp_path: Path) -> None:
    invariants = (
        "  - {name: spread, history: {model: rate, f: h1, limit: 100000, window: 1s, per: replica}}"
    )
    code, run_dir, output = stress(tmp_path, WHO, WHO_LOAD, invariants)
    assert code == 0, output[-3000:]
    ops = history(run_dir)
    served: dict[tuple[int, str], set[int]] = defaultdict(set)
    completions = 0
    for op in ops:
        assert "replica" in op, op  # every operation, invocations included, names its replica
        if op["type"] == "invoke":
            continue
        assert op["type"] == "ok", op
        assert op["replica"] == op["value"], op  # what the proxy says == what the replica said
        served[(op["trial"], op["f"])].add(op["replica"])
        if op["f"] in ("closed", "open"):  # sent by one of the two worker processes
            assert op["process"] > 1_000_000, op
        completions += 1
    for trial in (1, 2):
        for f in ("h1", "h2", "closed"):
            assert served[(trial, f)] == {0, 1, 2}, (trial, f, served)
        assert served[(trial, "open")], served
    assert completions == len(ops) // 2 >= 2 * (30 + 300 + 6 + 30)


TAKE = """\
    take: {method: POST, path: "/take?t={{ trial }}", history: {f: take, key: coupon}}"""
TAKE_LOAD = "    - burst: {requests: 30, request: take}"
PER_REPLICA = "  - {name: limit, history: {model: rate, limit: 3, window: 10s, per: PER}}"
LOAD_FACTS = """\
  - name: each-replica-admits-its-share
    http: {method: GET, path: /health}
    expect: >-
      all(r["ok"] <= LIMIT for r in load.take.replicas.values())
      and len(load.take.replicas) == 3
      and sum(r["sent"] for r in load.take.replicas.values()) == load.take.sent
      and load.total.replicas["0"]["status"]["200"] == 3"""


@pytest.mark.slow
def test_a_per_replica_rate_limit_holds_per_replica_and_fails_per_key(tmp_path: Path) -> None:
    invariants = PER_REPLICA.replace("PER", "replica") + "\n" + LOAD_FACTS.replace("LIMIT", "3")
    code, run_dir, output = stress(tmp_path / "replica", TAKE, TAKE_LOAD, invariants)
    assert code == 0, output[-3000:]
    outputs = stress_outputs(run_dir)["outputs"]
    assert outputs["per_invariant"]["limit"]["violations"] == 0
    assert outputs["per_invariant"]["each-replica-admits-its-share"]["violations"] == 0
    oks = [op for op in history(run_dir) if op["type"] == "ok"]
    assert len(oks) == 2 * 9  # three replicas admit three each, per trial
    assert sorted(op["replica"] for op in oks if op["trial"] == 1) == [0, 0, 0, 1, 1, 1, 2, 2, 2]

    code, run_dir, output = stress(
        tmp_path / "key", TAKE, TAKE_LOAD, PER_REPLICA.replace("PER", "key")
    )
    assert code == 1, output[-3000:]
    findings = stress_outputs(run_dir)["outputs"]["findings"]
    assert findings[0]["name"] == "limit"
    assert "rate-exceeded" in findings[0]["message"]


@pytest.mark.slow
def test_per_replica_load_variables_catch_a_replica_over_its_share(tmp_path: Path) -> None:
    code, run_dir, output = stress(tmp_path, TAKE, TAKE_LOAD, LOAD_FACTS.replace("LIMIT", "2"))
    assert code == 1, output[-3000:]
    finding = stress_outputs(run_dir)["outputs"]["findings"][0]
    assert finding["name"] == "each-replica-admits-its-share"


def test_the_proxy_daemon_tells_which_upstream_each_client_connection_got(
    tmp_path: Path,
) -> None:
    ports = [free_port() for _ in range(2)]
    servers = [
        spawn(
            f"replica-{i}",
            [sys.executable, str(SERVICE)],
            log_path=tmp_path / f"replica-{i}.log",
            env={"PORT": str(port), "REPLICA": str(i)},
        )
        for i, port in enumerate(ports)
    ]
    daemon, control = start_proxy_daemon(tmp_path / "proxyd.log", seed=1)
    try:
        for port in ports:
            assert wait_for_port("127.0.0.1", port, deadline_s=20)
        host, front = control.create("front", [f"127.0.0.1:{p}" for p in ports])
        said: dict[int, int] = {}
        for _ in range(6):
            with socket.create_connection((host, front), timeout=5) as client:
                client.sendall(b"POST /who HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                answer = b""
                while not answer.endswith(b"}"):
                    chunk = client.recv(4096)
                    assert chunk, answer
                    answer += chunk
                said[client.getsockname()[1]] = json.loads(answer.split(b"\r\n\r\n", 1)[1])[
                    "replica"
                ]
        peers = control.peers("front")
        got = {
            int(peer.rpartition(":")[2]): ports.index(int(upstream.rpartition(":")[2]))
            for peer, upstream in peers.items()
        }
        assert got == said
        assert sorted(said.values()) == [0, 0, 0, 1, 1, 1]
        total, newer = control.peers_since("front", 4)
        assert total == 6
        assert len(newer) == 2 and set(newer) < set(peers)
    finally:
        control.close()
        daemon.stop()
        for server in servers:
            server.stop()


@pytest.mark.slow
def test_a_service_at_a_url_has_no_replica_and_nothing_fails(tmp_path: Path) -> None:
    port = free_port()
    server = spawn(
        "replica-at-url",
        [sys.executable, str(SERVICE)],
        log_path=tmp_path / "service.log",
        env={"PORT": str(port), "REPLICA": "0", "LIMIT": "100"},
    )
    try:
        assert wait_for_port("127.0.0.1", port, deadline_s=20)
        invariants = (
            PER_REPLICA.replace("PER", "key").replace("limit: 3", "limit: 100")
            + "\n  - {name: no-replicas, http: {method: GET, path: /health},"
            + " expect: 'load.take.replicas == {} and load.take.ok == 30'}"
        )
        text = PIPELINE.replace(
            '    command: ["{{ python }}", "SERVICE"]\n    replicas: 3\n'
            '    env: {REPLICA: "{{ replica }}", LIMIT: "3"}\n'
            "    health: {path: /health, timeout: 20s}\n",
            f'    url: "http://127.0.0.1:{port}"\n',
        )
        assert f"127.0.0.1:{port}" in text
        text = text.replace("REQUESTS", TAKE).replace("LOAD", TAKE_LOAD)
        pipeline = tmp_path / "pipeline.yaml"
        pipeline.write_text(text.replace("INVARIANTS", invariants))
        result = heisen("stress", str(pipeline), "--run-dir", str(tmp_path / "run"), "--ci")
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        ops = history(tmp_path / "run")
        assert ops and all("replica" not in op for op in ops)
    finally:
        server.stop()
