"""Fuzz findings: one per distinct bug, shrunk without drifting, each with a curl line and a
`heisen fuzz replay` that exits 1 while the bug is there and 0 once it is fixed."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from functools import partial
from pathlib import Path

from fuzz_servers import serve
from three_bugs_service import make_app

import support
from heisen.fuzz.adhoc import run_adhoc_fuzz

SPEC = Path(__file__).parent / "three_bugs_openapi.yaml"
CURL = shutil.which("curl")

heisen = partial(support.heisen, "fuzz", timeout=60)


def test_three_planted_bugs_give_three_findings_that_replay(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "a"
    switch = {"fixed": False}
    with serve(lambda: make_app(switch)) as url:
        result = run_adhoc_fuzz(
            SPEC, url, operation="POST /orders", cases=120, seed=1, run_dir=run_dir
        )
        findings = [f.to_manifest() for f in result.operations[0].failures]
        assert sorted(f["field"] for f in findings) == ["note", "qty", "user"], findings
        assert all(f["outcome"] == "5xx" and f["hits"] >= 1 for f in findings)
        by_field = {f["field"]: f for f in findings}
        assert by_field["user"]["hits"] > 1  # the long-string edges are one bug, not several
        # shrinking kept each bug: the user is still one past max_length, never ""
        assert '"user":"' + "a" * 65 + '"' in by_field["user"]["shrunk"]
        assert by_field["note"]["shrunk"].endswith('"note":null}')
        assert by_field["note"]["conforming"] is True  # null is allowed there: a plain bug
        for finding in findings:
            assert f"--data-binary @fuzz/{finding['id']}.json" in finding["curl"]
            assert finding["replay"] == shlex.join(
                ["heisen", "fuzz", "replay", str(run_dir), finding["id"]]
            )
            if CURL is not None:  # without curl the lines are checked as text only
                words = shlex.split(finding["curl"])
                answer = subprocess.run(
                    [CURL, *words[1:]], cwd=run_dir, capture_output=True, text=True, timeout=10
                )
                assert answer.stdout.startswith("HTTP/1.1 500"), answer.stdout
            replay = heisen("replay", str(run_dir), finding["id"])
            assert replay.returncode == 1, replay.stderr
        switch["fixed"] = True
        for finding in findings:
            replay = heisen("replay", str(run_dir), finding["id"])
            assert replay.returncode == 0, replay.stderr
    # the service is gone: the replay cannot reach it
    assert heisen("replay", str(run_dir), findings[0]["id"]).returncode == 3


def test_replay_refuses_an_unknown_case_and_a_folder_that_is_no_run(tmp_path: Path) -> None:
    (tmp_path / "fuzz").mkdir()
    unknown = heisen("replay", str(tmp_path), "0123456789abcdef")
    assert unknown.returncode == 2
    assert "no fuzz finding '0123456789abcdef'" in unknown.stderr
    not_a_run = heisen("replay", str(tmp_path / "nowhere"), "0123456789abcdef")
    assert not_a_run.returncode == 2
    assert "not the run dir" in not_a_run.stderr
    assert heisen("replay", str(tmp_path)).returncode == 2
