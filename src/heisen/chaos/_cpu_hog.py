"""CPU burners for `pod-cpu-hog`: busy processes charged to a replica's CPU.

Where the replica runs in its own cgroup, each burner joins that cgroup, so
it competes with the replica for the replica's own quota, as a stress process
inside the pod does in LitmusChaos' pod-cpu-hog. Without a cgroup, each
burner is pinned to the CPU the replica last ran on: it competes with the
replica for that core, which is weaker (the scheduler may move the replica),
and the caller warns about it. Burners are managed processes that die with
heisen, and `stop()` ends them on every exit path.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from heisen.system import ManagedProcess, spawn
from heisen.system_protocol import ProcessGroup

BURN = "while True:\n    pass\n"


def last_cpu(pid: int) -> int | None:
    """The CPU `pid` last ran on (field 39 of /proc/<pid>/stat), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return int(fields[36])
    except (IndexError, ValueError):
        return None


class Burners:
    """`cores` busy processes beside one replica; `stop()` is idempotent."""

    def __init__(self, label: str, log_dir: Path) -> None:
        self.label = label
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []
        self.mode = "none"

    def start(
        self, cores: int, *, cgroup: ProcessGroup | None = None, beside_pid: int | None = None
    ) -> list[int]:
        """Start the burners; returns their pids. `cgroup` wins over `beside_pid`."""
        try:
            for number in range(cores):
                process = spawn(
                    f"burner-{self.label}-{number}",
                    [sys.executable, "-c", BURN],
                    log_path=self.log_dir / "chaos-burners.log",
                    env={"HEISEN_BURNER": self.label},
                )
                self.processes.append(process)
                if cgroup is not None:
                    cgroup.attach(process.pid)
                    self.mode = "cgroup"
                elif beside_pid is not None:
                    cpu = last_cpu(beside_pid)
                    if cpu is not None:
                        os.sched_setaffinity(process.pid, {cpu})
                    self.mode = "pinned"
        except BaseException:
            self.stop()
            raise
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.kill()
        self.processes = []
