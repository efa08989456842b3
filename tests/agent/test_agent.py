"""heisen's load agent run as a subprocess, over the records it streams back.

The agent is the real `heisen agent` on a real system (the counter service's
two replicas and embedded PostgreSQL on this machine); only where it runs
differs from a pod's: its plan points at 127.0.0.1 instead of cluster
addresses, and it has no cluster API (`in_cluster: false`).
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from heisen import events
from heisen.agent import Addresses, AgentPlan, collect, plan_for, run_local
from heisen.agent._wire import PREFIX, Reader, encode, lines_of
from heisen.errors import NotEvaluated, SystemUnavailable
from heisen.manifest import PhaseStatus, RunInfo, RunManifest, now
from heisen.pipeline import load_pipeline
from heisen.system import SystemHandle

pytestmark = pytest.mark.slow


def manifest_for(pipeline: Path) -> RunManifest:
    return RunManifest(
        run=RunInfo(
            id="agent-test",
            pipeline=str(pipeline),
            pipeline_sha256="0" * 64,
            seed=7,
            started_at=now(),
            heisen_version="test",
        )
    )


def local_plan(pipeline: Path, system: SystemHandle, run_dir: Path, **overrides: str) -> AgentPlan:
    addresses = Addresses(
        services={"counter": overrides.get("counter", system.service_url("counter"))},
        dependencies={
            "postgres": (
                "postgres",
                overrides.get("postgres", system.dependency_address("postgres")),
            )
        },
    )
    return contain_plan(pipeline, addresses, skip=run_dir)


def contain_plan(
    pipeline: Path, addresses: Addresses | None = None, skip: Path | None = None
) -> AgentPlan:
    """The plan of contain on `pipeline`, its services and dependencies at `addresses`."""
    return plan_for(
        load_pipeline(pipeline),
        manifest_for(pipeline),
        phase="contain",
        seed=7,
        options={},
        addresses=addresses or Addresses(services={}, dependencies={}),
        limits={},
        namespace="heisen-agent-test",
        labels={"heisen.dev/run": "agent-test"},
        cluster=None,
        skip=skip,
        in_cluster=False,
    )


def test_the_agent_runs_the_phase_and_streams_its_trials_bursts_and_load_log(
    local_counter: tuple[Path, SystemHandle], tmp_path: Path
) -> None:
    pipeline, system = local_counter
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    seen: list[events.Event] = []
    result = run_local(local_plan(pipeline, system, run_dir), seen.append, run_dir)

    assert result.status in (PhaseStatus.FAILED, PhaseStatus.PASSED), result.summary
    trials = [e for e in seen if isinstance(e, events.TrialFinished)]
    assert [(e.phase, e.trial, e.requests) for e in trials] == [
        ("contain", 1, 40),
        ("contain", 2, 40),
    ]
    outputs = result.outputs
    assert outputs["trials"] == 2 and outputs["outcomes"]["sent"] == 80
    # the burst was released from the agent, together: each trial's barrier measured
    assert outputs["bursts"]["count"] == 2
    assert outputs["release_spread_ms"]["max"] is not None
    assert [line["violated"] for line in outputs["per_trial"]] == [
        "no-lost-update" in line["violations"] for line in outputs["per_trial"]
    ]
    assert outputs["enforcement"] == "kubernetes" and outputs["namespace"] == "heisen"
    # the load log came back as an artifact: one line per request sent
    assert "contain-load.jsonl" in result.artifacts
    logged = (run_dir / "contain-load.jsonl").read_text().splitlines()
    assert len(logged) == 80 and all(json.loads(line) for line in logged)


def test_an_unreachable_dependency_is_an_error_from_the_agent_never_a_verdict(
    local_counter: tuple[Path, SystemHandle], tmp_path: Path
) -> None:
    pipeline, system = local_counter
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    plan = local_plan(
        pipeline, system, run_dir, postgres=f"postgresql://heisen@127.0.0.1:{port}/heisen"
    )
    with pytest.raises((NotEvaluated, SystemUnavailable)) as raised:
        run_local(plan, events.discard, run_dir)
    assert str(port) in str(raised.value) or "postgres" in str(raised.value).lower()


def test_long_records_survive_a_runtime_that_splits_lines() -> None:
    record = encode("artifact", name="x.jsonl", text="y" * 30_000)
    lines = lines_of(record, width=8000)
    assert len(lines) == 4 and all(len(line) <= 8000 + len(PREFIX) + 1 for line in lines)
    reader = Reader()
    decoded = [reader.feed(line) for line in ["some library's warning", *lines]]
    assert decoded[:-1] == [None] * 4
    assert decoded[-1] == {"kind": "artifact", "name": "x.jsonl", "text": "y" * 30_000}


def test_an_agent_that_ends_without_a_result_is_an_error_quoting_what_it_said(
    tmp_path: Path,
) -> None:
    said = [
        encode("hello", version="0", phase="contain"),
        "Traceback (most recent call last):",
        "MemoryError",
    ]
    with pytest.raises(
        SystemUnavailable, match=r"(?s)ended without a result; its last lines:\n.*MemoryError"
    ):
        collect(said, events.discard, tmp_path, "the agent")
    with pytest.raises(SystemUnavailable, match="never started heisen"):
        collect(["exec /usr/bin/heisen: no such file"], events.discard, tmp_path, "the agent")


def test_an_agent_of_another_version_is_warned_about(tmp_path: Path) -> None:
    seen: list[events.Event] = []
    said = [
        encode("hello", version="0.0.1", phase="contain"),
        encode("error", type="SystemUnavailable", message="no route to redis"),
    ]
    with pytest.raises(SystemUnavailable, match="the agent: no route to redis"):
        collect(said, seen.append, tmp_path, "the agent")
    [warning] = [e for e in seen if isinstance(e, events.Warning)]
    assert "runs heisen 0.0.1" in warning.message and warning.phase == "contain"


def test_a_pipeline_folder_too_big_to_send_is_refused_naming_its_largest_files(
    tmp_path: Path,
) -> None:
    from heisen.errors import UsageError
    from support import copy_counter

    folder = copy_counter(tmp_path / "counter")
    (folder / "dump.sql").write_text("-- x\n" * 250_000)  # 1.2 MB the pipeline never reads
    with pytest.raises(UsageError, match=r"more than the 900 KiB .* \(largest: dump.sql"):
        contain_plan(folder / "pipeline.yaml")


def test_a_plan_naming_a_file_outside_its_folder_is_refused(tmp_path: Path) -> None:
    from heisen.errors import UsageError
    from support import copy_counter

    folder = copy_counter(tmp_path / "counter")
    plan = contain_plan(folder / "pipeline.yaml")
    assert set(plan.files) == {"pipeline.yaml", "counter_service.py", "schema.sql"}
    hostile = AgentPlan.from_json(plan.to_json().replace('"schema.sql"', '"../../escaped.sql"'))
    with pytest.raises(UsageError, match=re.escape("outside its folder: ../../escaped.sql")):
        hostile.materialise(tmp_path / "work" / "pipeline")
    assert not (tmp_path / "escaped.sql").exists()
