"""Child processes heisen starts and must stop: services, databases, proxies.

Every child:
- runs in its own session (process group), so a Ctrl-C typed at the terminal
  reaches heisen only, and heisen stops its children in order;
- gets SIGKILL from the kernel if heisen dies (PR_SET_PDEATHSIG). The kernel
  sends it when the *thread* that forked the child exits, so spawn from a
  thread that lives as long as the child (the main thread, or a supervisor
  thread that outlives what it starts). The signal is set by a small exec shim,
  never by a `preexec_fn`: Python code run between fork and exec can deadlock
  on a lock another thread held at the fork, and heisen spawns from threads;
- writes stdout and stderr to its own log file, whose tail is shown when it
  fails to come up;
- is registered in a process-wide table that `stop_all()` empties on every
  exit path (atexit, signal handlers, the runner's finally).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_live: dict[int, ManagedProcess] = {}
_live_lock = threading.Lock()

# argv: PARENT_PID USER PROGRAM COMMAND... Runs as the child's first program. PROGRAM is a
# resolved path: once the user is switched, the interpreter's own library may be unreadable.
_EXEC_SHIM = """
import ctypes, os, pwd, sys
parent, user, program, *command = sys.argv[1:]
if user:
    entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
if os.getppid() != int(parent):
    sys.exit(137)  # heisen died before the signal was set
os.execv(program, command)
"""


def _behind_shim(program: str, argv: list[str], user: str | int | None) -> list[str]:
    """`argv` run by the shim, which switches to `user` and ties the child's life to ours."""
    who = "" if user is None else str(user)
    return [sys.executable, "-I", "-S", "-c", _EXEC_SHIM, str(os.getpid()), who, program, *argv]


def _executable(program: str, env: Mapping[str, str], cwd: Path | None) -> str:
    """The path `program` runs from, or FileNotFoundError as Popen would raise it."""
    if os.sep in program:
        path = Path(program) if os.path.isabs(program) else Path(cwd or ".").absolute() / program
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is not None:
            return os.path.abspath(found)
    raise FileNotFoundError(errno.ENOENT, "no such executable", program)


class ManagedProcess:
    """A started child process with its log; stop() is idempotent."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def signal(self, signum: int) -> None:
        """Signal the child's process group: its leader and whatever the leader started.

        Once the leader is reaped, its pid is free again and a new session leader
        (another run's proxy, say) may take it, with the same number as its group: the
        group is then signalled only while no process has that pid, so what is left of it
        are this child's own orphans.
        """
        pid = self.popen.pid
        if self.popen.returncode is not None and os.path.exists(f"/proc/{pid}"):
            return  # the pid is someone else's now; this group has no leader left to signal
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)

    def _exited_unreaped(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the leader to exit, leaving it a zombie (not reaped)."""
        deadline = time.monotonic() + timeout_s
        while self.popen.returncode is None and time.monotonic() < deadline:
            try:
                exited = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped elsewhere (Popen.poll in another thread)
                return
            if exited is not None:
                return
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a pod kill with grace 0."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        _forget(self)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `grace_s`."""
        if self.alive():
            self.signal(signal.SIGCONT)  # a duty-cycled child must be able to handle SIGTERM
            self.signal(signal.SIGTERM)
            self._exited_unreaped(grace_s)
        # The group may still hold grandchildren even when the leader has exited; while the
        # leader is not reaped its pid cannot be taken, so this reaches this group only.
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        _forget(self)

    def tail(self, lines: int = 20) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - 16384))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} alive={self.alive()}>"


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | int | None = None,
) -> ManagedProcess:
    """Start `argv` as a managed child; its output goes to `log_path` (appended)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    program = _executable(argv[0], full_env, cwd)
    command, popen_user = list(argv), user
    if sys.platform.startswith("linux"):  # the shim switches user itself
        command, popen_user = _behind_shim(program, command, user), None
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            user=popen_user,
        )
    process = ManagedProcess(name, popen, log_path)
    with _live_lock:
        _live[process.pid] = process
    return process


def _forget(process: ManagedProcess) -> None:
    with _live_lock:
        _live.pop(process.pid, None)


def live_processes() -> list[ManagedProcess]:
    with _live_lock:
        return list(_live.values())


def stop_all(grace_s: float = 3.0) -> None:
    """Stop every child still registered, newest first."""
    for process in reversed(live_processes()):
        process.stop(grace_s)


def wait_until(predicate: object, deadline_s: float, interval_s: float = 0.02) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(interval_s)
    return False
