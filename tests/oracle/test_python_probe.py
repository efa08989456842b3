"""`python:` probes: validate reads them without running them; run time runs them in a child.

Every hostile probe (abort, segfault, exit, endless loop, raise, data that is
not plain) must end as a ProbeError naming the probe and what happened, with
heisen alive, the next call answered and no process left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heisen.errors import PipelineError
from heisen.oracle._python_runner import python_probe_pids, stop_python_probes
from heisen.oracle.probes import ProbeError, check_python_ref, python_probe
from heisen.pipeline import PYTHON_PROBE_KWARGS, load_pipeline
from support import wait_until

MODULE = """\
import ctypes
import os
import pathlib
import sys

pathlib.Path(__file__).with_name("imported-at").write_text("the module was imported")

STATE = {"calls": 0}


def seats(trial, seed=0, run_dir=None):
    STATE["calls"] += 1
    return {"sold": 9, "capacity": 10, "trial": trial, "calls": STATE["calls"]}


def scalar(**context):
    return sorted(context)


async def later(trial):
    return trial * 2


def aborts():
    os.abort()


def segfaults():
    ctypes.string_at(0)


def loops():
    while True:
        pass


def exits():
    sys.exit(3)


def hard_exit():
    os._exit(4)


def raises(trial):
    raise ValueError(f"seat map is gone in trial {trial}")


def not_data():
    return {"when": object()}


def huge():
    return "x" * (17 * 1024 * 1024)


def chatty():
    print("y" * (8 * 1024 * 1024))
    return 1


def spawns():
    import subprocess
    child = subprocess.Popen(["sleep", "60"])
    pathlib.Path(__file__).with_name("grandchild").write_text(str(child.pid))
    while True:
        pass
"""


@pytest.fixture
def probe_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "hostile_probes.py").write_text(MODULE)
    yield tmp_path
    pids = python_probe_pids()
    stop_python_probes()
    assert python_probe_pids() == []
    for pid in pids:
        assert not _alive(pid), f"probe worker {pid} survived stop_python_probes()"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _context(run_dir: Path) -> dict[str, object]:
    return {"trial": 2, "seed": 7, "run_dir": str(run_dir), "deps": {}, "services": {}}


def call(probe_dir: Path, name: str, timeout_s: float | None = None) -> dict[str, object]:
    return python_probe(
        f"hostile_probes:{name}", _context(probe_dir), base_dir=probe_dir, timeout_s=timeout_s
    )


# ------------------------------------------------------------------ validate


PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: t
services:
  app: {{command: ["{{{{ python }}}}", "app.py"]}}
scenario:
  requests:
    go: {{method: POST, path: /go}}
  load:
    - burst: {{requests: 2}}
invariants:
  - name: seats
    python: {ref}
    expect: sold <= capacity
"""


def _pipeline(directory: Path, ref: str) -> Path:
    (directory / "app.py").write_text("")
    path = directory / "pipeline.yaml"
    path.write_text(PIPELINE.format(ref=ref))
    return path


def test_validate_reads_the_module_without_importing_it(probe_dir: Path) -> None:
    loaded = load_pipeline(_pipeline(probe_dir, "hostile_probes:seats"))
    assert loaded.pipeline.invariants[0].python == "hostile_probes:seats"
    assert not (probe_dir / "imported-at").exists()
    assert "hostile_probes" not in sys.modules


def test_heisen_validate_runs_no_user_code(probe_dir: Path) -> None:
    heisen = Path(sys.executable).with_name("heisen")
    done = subprocess.run(
        [str(heisen), "validate", str(_pipeline(probe_dir, "hostile_probes:seats"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (probe_dir / "imported-at").exists()


def test_validate_refuses_builtins_with_a_located_message(probe_dir: Path) -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline(_pipeline(probe_dir, "os:abort"))
    problem = info.value.problems[0]
    assert problem.path == "invariants[0].python"
    assert problem.line == 13
    assert "must be Python source modules" in problem.message
    assert "os:abort is in os, a frozen standard-library module" in problem.message
    assert "builtin/C function" in problem.message


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("posix:abort", "posix:abort is a builtin/C function (posix is built into"),
        ("_socket:socket", "_socket is a compiled extension"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("hostile_probes:nope", "hostile_probes.py defines no top-level function 'nope'"),
        ("hostile_probes:STATE", "bound by an assignment (hostile_probes.py, line 8)"),
        ("hostile_probes:ctypes", "bound by an import (hostile_probes.py, line 1)"),
        ("hostile_probes", "is not module:function"),
        ("hostile_probes:a.b", "is not a function name"),
    ],
)
def test_static_check_says_what_it_cannot_see(probe_dir: Path, ref: str, expected: str) -> None:
    message = check_python_ref(ref, PYTHON_PROBE_KWARGS, probe_dir)
    assert message is not None and expected in message
    assert not (probe_dir / "imported-at").exists()


def test_static_check_binds_parameters_like_the_call(tmp_path: Path) -> None:
    (tmp_path / "shapes.py").write_text(
        textwrap.dedent(
            """
            def kw_only(*, trial, seed=1): ...
            def needs_secret(trial, secret): ...
            def positional_only(trial, /): ...
            def star(*args, **kwargs): ...
            class Probe: ...
            if True:
                async def nested(deps, services): ...
            try:
                def guarded(run_dir): ...
            except ImportError:
                pass
            """
        )
    )
    allowed = PYTHON_PROBE_KWARGS
    assert check_python_ref("shapes:kw_only", allowed, tmp_path) is None
    assert check_python_ref("shapes:star", allowed, tmp_path) is None
    assert check_python_ref("shapes:nested", allowed, tmp_path) is None
    assert check_python_ref("shapes:guarded", allowed, tmp_path) is None
    assert "'secret' cannot be bound" in (
        check_python_ref("shapes:needs_secret", allowed, tmp_path) or ""
    )
    assert "positional-only" in (
        check_python_ref("shapes:positional_only", allowed, tmp_path) or ""
    )
    assert "is a class" in (check_python_ref("shapes:Probe", allowed, tmp_path) or "")


def test_static_check_does_not_import_parent_packages_or_accept_bad_syntax(tmp_path: Path) -> None:
    package = tmp_path / "probepkg"
    package.mkdir()
    (package / "__init__.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    (package / "checks.py").write_text("def sold(deps):\n    return 1\n")
    (package / "broken.py").write_text("def sold(deps)\n    return 1\n")
    assert check_python_ref("probepkg.checks:sold", PYTHON_PROBE_KWARGS, tmp_path) is None
    message = check_python_ref("probepkg.broken:sold", PYTHON_PROBE_KWARGS, tmp_path) or ""
    assert "broken.py, line 1: SyntaxError" in message
    assert not (package / "__init__.py.ran").exists()


# ------------------------------------------------------------------ run time


def test_a_correct_probe_returns_its_values_and_keeps_its_state(probe_dir: Path) -> None:
    assert call(probe_dir, "seats") == {
        "sold": 9,
        "capacity": 10,
        "trial": 2,
        "calls": 1,
    }
    assert call(probe_dir, "seats")["calls"] == 2  # one worker for the run: module state lives on
    assert call(probe_dir, "scalar") == {"value": ["deps", "run_dir", "seed", "services", "trial"]}
    assert call(probe_dir, "later") == {"value": 4}
    assert (probe_dir / "imported-at").exists()  # imported in the worker, not in heisen
    assert "hostile_probes" not in sys.modules


@pytest.mark.parametrize(
    ("name", "expected", "fault"),
    [
        ("aborts", r"was killed by SIGABRT \(at hostile_probes.py, line 25\)", "environment"),
        ("segfaults", r"was killed by SIGSEGV \(at hostile_probes.py, line 29\)", "environment"),
        ("exits", r"called sys.exit\(3\)", "environment"),
        ("hard_exit", r"exited with status 4", "environment"),
        (
            "raises",
            r"raised ValueError: seat map is gone in trial 2 \(at hostile_probes.py, line 46\)",
            "environment",
        ),
        (
            "not_data",
            r"returned data that is not plain: the result\['when'\] is a builtins.object",
            "pipeline",
        ),
        ("huge", r"returned 17.0 MB of data, more than the 16 MB", "pipeline"),
    ],
)
def test_a_hostile_probe_is_a_probe_error_and_heisen_carries_on(
    probe_dir: Path, name: str, expected: str, fault: str
) -> None:
    with pytest.raises(ProbeError, match=f"^python probe hostile_probes:{name} {expected}") as info:
        call(probe_dir, name)
    assert info.value.fault == fault
    assert call(probe_dir, "seats")["sold"] == 9  # a new worker if the old one died


def test_the_builtin_abort_at_run_time_is_a_probe_error(probe_dir: Path) -> None:
    with pytest.raises(ProbeError, match="python probe os:abort was killed by SIGABRT"):
        python_probe("os:abort", _context(probe_dir), base_dir=probe_dir)


def test_an_endless_probe_is_killed_at_its_timeout_with_what_it_started(probe_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProbeError, match="hostile_probes:spawns did not return within 1s"):
        call(probe_dir, "spawns", timeout_s=1)
    assert time.monotonic() - started < 5
    grandchild = int((probe_dir / "grandchild").read_text())
    wait_until(
        lambda: not _alive(grandchild),
        timeout=5,
        what="the process the probe started outlived the timeout",
    )
    assert python_probe_pids() == []
    assert call(probe_dir, "seats")["calls"] == 1  # a fresh worker


def test_an_endless_loop_uses_the_default_timeout(probe_dir: Path) -> None:
    from heisen.oracle import _python_runner

    assert _python_runner.DEFAULT_TIMEOUT_S == 10.0
    with pytest.raises(ProbeError, match=r"loops did not return within 0\.5s"):
        call(probe_dir, "loops", timeout_s=0.5)


def test_output_is_drained_not_kept(probe_dir: Path) -> None:
    assert call(probe_dir, "chatty") == {"value": 1}


def test_a_bad_timeout_is_a_pipeline_error(probe_dir: Path) -> None:
    with pytest.raises(ProbeError, match="finite number of seconds") as info:
        call(probe_dir, "seats", timeout_s=float("inf"))
    assert info.value.fault == "pipeline"


def test_heisen_killed_takes_its_probe_worker_with_it(probe_dir: Path) -> None:
    code = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from heisen.oracle.probes import python_probe
        from heisen.oracle._python_runner import python_probe_pids
        python_probe("hostile_probes:seats", {{"trial": 1}}, base_dir=Path({str(probe_dir)!r}))
        print(python_probe_pids()[0], flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    worker = int(done.stdout.split()[0])
    wait_until(lambda: not _alive(worker), timeout=5, what="the probe worker outlived heisen")


def test_call_overhead(probe_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    call(probe_dir, "seats")
    first = time.perf_counter() - started
    calls = 200
    started = time.perf_counter()
    for _ in range(calls):
        call(probe_dir, "seats")
    each = (time.perf_counter() - started) / calls
    with capsys.disabled():
        print(
            f"\npython probe: first call (worker start) {first * 1000:.0f} ms, "
            f"then {each * 1000:.2f} ms per call"
        )
    assert each < 0.05
