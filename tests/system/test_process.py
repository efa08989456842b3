"""Managed child processes: they die with heisen, run as the user asked, and fail to start loudly."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from heisen.system._process import spawn
from support import wait_until


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_child_spawned_from_a_thread_dies_when_heisen_is_killed(tmp_path):
    script = textwrap.dedent(
        f"""
        import threading, time
        from pathlib import Path
        from heisen.system._process import spawn

        def supervisor():
            child = spawn("sleeper", ["sleep", "60"], log_path=Path({str(tmp_path / "s.log")!r}))
            print(child.pid, flush=True)
            time.sleep(60)

        threading.Thread(target=supervisor, daemon=True).start()
        time.sleep(60)
        """
    )
    heisen = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(heisen.stdout.readline())
        wait_until(lambda: comm(child_pid) == "sleep", timeout=5, what="the shim exec'd sleep")
        assert not gone(child_pid)
        assert Path(f"/proc/{child_pid}/comm").read_text().strip() == "sleep"
    finally:
        heisen.kill()
        heisen.wait()
    wait_until(
        lambda: gone(child_pid),
        timeout=5.0,
        what=f"sleep (pid {child_pid}) outlived its killed parent",
    )


def test_a_child_keeps_its_pid_name_and_exit_status(tmp_path):
    log = tmp_path / "child.log"
    child = spawn("shell", ["sh", "-c", "echo $$ $0 $1; exit 3", "argzero", "one"], log_path=log)
    assert child.popen.wait(timeout=10) == 3
    assert log.read_text().split() == [str(child.pid), "argzero", "one"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_a_child_runs_as_the_user_asked(tmp_path):
    log = tmp_path / "id.log"
    child = spawn("id", ["id", "-u", "-n"], log_path=log, user="nobody")
    assert child.popen.wait(timeout=10) == 0
    assert log.read_text().strip() == "nobody"


def test_a_missing_program_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-program"):
        spawn("missing", ["no-such-program", "--flag"], log_path=tmp_path / "m.log")
    with pytest.raises(FileNotFoundError, match=r"not-here\.sh"):
        spawn("missing", ["./not-here.sh"], log_path=tmp_path / "m.log", cwd=tmp_path)


def test_a_relative_program_is_found_in_the_childs_working_directory(tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $(pwd)\n")
    script.chmod(0o755)
    log = tmp_path / "hello.log"
    child = spawn("hello", ["./hello.sh"], log_path=log, cwd=tmp_path)
    assert child.popen.wait(timeout=10) == 0
    assert log.read_text().strip() == f"hello from {tmp_path}"


def test_stop_ends_the_whole_process_group(tmp_path):
    log = tmp_path / "group.log"
    child = spawn("group", ["sh", "-c", "sleep 60 & echo $!; wait"], log_path=log)
    wait_until(lambda: log.read_text().strip(), timeout=5, what="the shell wrote its child's pid")
    grandchild = int(log.read_text().split()[0])
    child.stop(grace_s=1.0)
    assert not child.alive()
    wait_until(lambda: gone(grandchild), timeout=5.0, what=f"grandchild {grandchild} is gone")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups as on Linux")
def test_stop_ends_what_a_leader_that_exited_on_its_own_left_in_its_group(tmp_path):
    log = tmp_path / "orphan.log"
    child = spawn("orphan", ["sh", "-c", "sleep 60 & echo $!"], log_path=log)
    wait_until(lambda: log.read_text().strip(), timeout=5, what="the shell wrote its child's pid")
    orphan = int(log.read_text().split()[0])
    child.popen.wait(timeout=5)  # the leader is gone and reaped; its sleep is still in the group
    assert not gone(orphan)
    child.stop(grace_s=1.0)
    wait_until(lambda: gone(orphan), timeout=5.0, what=f"orphan {orphan} is gone")
