"""CPU and memory limits for processes heisen starts, with Linux control groups.

Layout (the same under cgroup v1 and v2)::

    <hierarchy root>/heisen/<run-id>-<owner pid>-<owner start ticks>/<group>

`<hierarchy root>` is the cgroup v2 mount (`/sys/fs/cgroup`), or under v1 the
mount of each controller heisen uses (`cpu`, `cpuacct`, `memory`; they may be
co-mounted, e.g. `cpu,cpuacct`). The run directory's name records the pid of
the heisen process that owns it and that process's start time, so a later
heisen can tell a live owner from a dead one even after the pid is reused:
`cleanup_stale()` removes the runs whose owner is gone (a SIGKILLed heisen
never ran its cleanup). Removal kills whatever is still inside, children first.

A CPU limit of `cpu` cores is a CFS quota of `cpu * period` microseconds per
`period` (Kubernetes' `250m` = 25,000 µs per 100,000 µs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from heisen.errors import SystemUnavailable
from heisen.system_protocol import CpuThrottling

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "heisen"
_V1_CONTROLLERS = ("cpu", "cpuacct", "memory")


Throttling = CpuThrottling  # the name the platform has always used for it


def cgroup_version(root: Path = CGROUP_ROOT) -> int | None:
    """2 for a unified hierarchy, 1 for per-controller mounts, None without cgroups."""
    if (root / "cgroup.controllers").is_file():
        return 2
    if _v1_mounts():
        return 1
    return None


def _v1_mounts() -> dict[str, Path]:
    """Controller name -> v1 mount point, for the controllers heisen uses."""
    mounts: dict[str, Path] = {}
    try:
        text = Path("/proc/mounts").read_text()
    except OSError:
        return mounts
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "cgroup":
            continue
        for option in fields[3].split(","):
            if option in _V1_CONTROLLERS:
                mounts.setdefault(option, Path(fields[1]))
    return mounts


def process_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = stat[stat.rfind(")") + 2 :].split()
    return int(rest[19])


def _write(path: Path, value: str) -> None:
    with path.open("w") as handle:
        handle.write(value)


def _read_ints(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, number = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(number)
    return values


def _pids_in(directory: Path) -> list[int]:
    try:
        text = (directory / "cgroup.procs").read_text()
    except OSError:
        return []
    return [int(line) for line in text.split()]


def _remove_tree(directory: Path, deadline_s: float = 5.0) -> None:
    """Kill every process in `directory` and below, then rmdir bottom-up."""
    if not directory.is_dir():
        return
    for child in sorted((p for p in directory.iterdir() if p.is_dir()), reverse=True):
        _remove_tree(child, deadline_s)
    deadline = time.monotonic() + deadline_s
    while True:
        for pid in _pids_in(directory):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            # EBUSY while the killed tasks are still exiting.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Cgroup:
    """One leaf group: a directory per hierarchy (one under v2, up to three under v1)."""

    def __init__(self, name: str, version: int, dirs: dict[str, Path]) -> None:
        self.name = name
        self.version = version
        self._dirs = dirs  # v2: {"unified": dir}; v1: controller -> dir

    def _dir(self, controller: str) -> Path:
        return self._dirs["unified"] if self.version == 2 else self._dirs[controller]

    def directories(self) -> list[Path]:
        return sorted(set(self._dirs.values()))

    def procs_files(self) -> list[Path]:
        """The `cgroup.procs` files a process writes its pid into to join this group."""
        return [directory / "cgroup.procs" for directory in self.directories()]

    def attach(self, pid: int) -> None:
        """Move `pid` (the whole process) into this group."""
        for procs in self.procs_files():
            _write(procs, str(pid))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in self.directories():
            found.update(_pids_in(directory))
        return sorted(found)

    def set_cpu(self, cpu: float | None, period_us: int = 100_000) -> None:
        """Cap the group at `cpu` cores (None: no cap)."""
        if self.version == 2:
            quota = "max" if cpu is None else str(max(1000, round(cpu * period_us)))
            _write(self._dir("cpu") / "cpu.max", f"{quota} {period_us}")
            return
        directory = self._dir("cpu")
        _write(directory / "cpu.cfs_period_us", str(period_us))
        quota_us = -1 if cpu is None else max(1000, round(cpu * period_us))
        _write(directory / "cpu.cfs_quota_us", str(quota_us))

    def set_memory(self, memory: int | None) -> None:
        """Cap the group's memory at `memory` bytes (None: no cap)."""
        if self.version == 2:
            _write(self._dir("memory") / "memory.max", "max" if memory is None else str(memory))
        else:
            _write(self._dir("memory") / "memory.limit_in_bytes", str(memory or -1))

    def cpu_quota(self) -> tuple[int | None, int]:
        """(quota µs or None for no cap, period µs) as the kernel holds them."""
        if self.version == 2:
            quota, period = (self._dir("cpu") / "cpu.max").read_text().split()
            return (None if quota == "max" else int(quota)), int(period)
        directory = self._dir("cpu")
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
        return (None if quota_us < 0 else quota_us), period_us

    def memory_limit(self) -> int | None:
        if self.version == 2:
            text = (self._dir("memory") / "memory.max").read_text().strip()
            return None if text == "max" else int(text)
        value = int((self._dir("memory") / "memory.limit_in_bytes").read_text())
        return None if value >= 2**62 else value

    def throttling(self) -> Throttling:
        stat = _read_ints(self._dir("cpu") / "cpu.stat")
        if self.version == 2:
            throttled_s = stat.get("throttled_usec", 0) / 1e6
        else:
            throttled_s = stat.get("throttled_time", 0) / 1e9
        return Throttling(stat.get("nr_periods", 0), stat.get("nr_throttled", 0), throttled_s)

    def cpu_usage_s(self) -> float:
        """CPU time used by every process that ran in the group, in seconds."""
        if self.version == 2:
            return _read_ints(self._dir("cpu") / "cpu.stat").get("usage_usec", 0) / 1e6
        try:
            return int((self._dir("cpuacct") / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return 0.0

    def remove(self) -> None:
        """Kill what is still inside, then remove the group's directories."""
        for directory in self.directories():
            _remove_tree(directory)

    def __repr__(self) -> str:
        return f"<Cgroup {self.name} v{self.version}>"


class CgroupManager:
    """The groups of one heisen run, under `heisen/<run-id>-<pid>-<start>` in each hierarchy."""

    def __init__(self, run_id: str, *, root: Path = CGROUP_ROOT) -> None:
        if not run_id or "/" in run_id:
            raise ValueError(f"run id {run_id!r} cannot name a cgroup")
        self.run_id = run_id
        self.root = root
        self.version = cgroup_version(root)
        pid = os.getpid()
        self.run_dirname = f"{run_id}-{pid}-{process_start_ticks(pid) or 0}"
        self._groups: dict[str, Cgroup] = {}
        self._probed = False
        self._reason: str | None = None

    # -- where the hierarchies are -------------------------------------------------

    def _bases(self) -> dict[str, Path]:
        """Key -> the `heisen` parent directory in each hierarchy used."""
        if self.version == 2:
            return {"unified": self.root / PARENT}
        if self.version == 1:
            return {name: mount / PARENT for name, mount in _v1_mounts().items()}
        return {}

    def _prepare_parents(self) -> None:
        """Create `heisen/` and the run directory, enabling v2 controllers on the way down."""
        for base in set(self._bases().values()):
            run_dir = base / self.run_dirname
            if self.version == 2:
                _enable_controllers(base.parent)
                base.mkdir(exist_ok=True)
                _enable_controllers(base)
                run_dir.mkdir(exist_ok=True)
                _enable_controllers(run_dir)
            else:
                run_dir.mkdir(parents=True, exist_ok=True)

    def available(self) -> str | None:
        """None when limits can be set here, otherwise the reason they cannot."""
        if not self._probed:
            self._reason = self._probe()
            self._probed = True
        return self._reason

    def _probe(self) -> str | None:
        if not os.path.exists("/proc/self/cgroup"):
            return "no Linux control groups on this system"
        if self.version is None:
            return f"no cgroup hierarchy mounted under {self.root}"
        if self.version == 1:
            missing = {"cpu", "memory"} - set(_v1_mounts())
            if missing:
                return f"cgroup v1 controller(s) not mounted: {', '.join(sorted(missing))}"
        probe_name = f".probe-{os.getpid()}"
        try:
            self._prepare_parents()
            group = self._make(probe_name)
            try:
                group.set_cpu(0.5)
                group.set_memory(256 * 1024 * 1024)
            finally:
                group.remove()
                if not self._groups:
                    for run_dir in self.run_directories():
                        _remove_tree(run_dir)
        except OSError as exc:
            where = exc.filename or self.root
            return f"cannot write cgroup limits at {where}: {exc.strerror or exc} (run as root or in a delegated cgroup)"
        return None

    def _make(self, name: str) -> Cgroup:
        dirs: dict[str, Path] = {}
        for key, base in self._bases().items():
            directory = base / self.run_dirname / name
            directory.mkdir(exist_ok=True)
            dirs[key] = directory
        return Cgroup(name, self.version or 0, dirs)

    # -- the run's groups ---------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        cpu: float | None,
        memory: int | None,
        period_us: int = 100_000,
    ) -> Cgroup:
        """A new group with the given limits (`cpu` in cores, `memory` in bytes)."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"{name!r} cannot name a cgroup")
        reason = self.available()
        if reason is not None:
            raise SystemUnavailable(f"cannot set CPU/memory limits: {reason}")
        try:
            self._prepare_parents()
            group = self._make(name)
            self._groups[name] = group
            group.set_cpu(cpu, period_us)
            group.set_memory(memory)
        except OSError as exc:
            raise SystemUnavailable(f"cannot create cgroup {name!r}: {exc}") from exc
        return group

    def groups(self) -> list[Cgroup]:
        return list(self._groups.values())

    def run_directories(self) -> list[Path]:
        return sorted({base / self.run_dirname for base in self._bases().values()})

    def remove_all(self) -> None:
        """Remove every group of this run, and the run directory; idempotent."""
        for group in list(self._groups.values()):
            group.remove()
        self._groups.clear()
        for run_dir in self.run_directories():
            _remove_tree(run_dir)
        self._remove_empty_parents()

    def _remove_empty_parents(self) -> None:
        """The shared `heisen` parent goes too once no run uses it (a busy one stays)."""
        for base in set(self._bases().values()):
            with contextlib.suppress(OSError):
                base.rmdir()

    def cleanup_stale(self) -> list[Path]:
        """Remove the run directories whose owning heisen process is gone; returns them."""
        removed: list[Path] = []
        for base in set(self._bases().values()):
            if not base.is_dir():
                continue
            for run_dir in sorted(p for p in base.iterdir() if p.is_dir()):
                if not _owner_alive(run_dir.name):
                    _remove_tree(run_dir)
                    removed.append(run_dir)
        self._remove_empty_parents()
        return removed

    def __enter__(self) -> CgroupManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove_all()


def _owner_alive(dirname: str) -> bool:
    """Whether the heisen process named by `<run-id>-<pid>-<start ticks>` still runs."""
    parts = dirname.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return True  # not ours to judge: leave it
    pid, start = int(parts[1]), int(parts[2])
    ticks = process_start_ticks(pid)
    return ticks is not None and (start == 0 or ticks == start)


def _enable_controllers(directory: Path) -> None:
    """v2: let children of `directory` use the cpu and memory controllers."""
    control = directory / "cgroup.subtree_control"
    enabled = control.read_text().split()
    wanted = [c for c in ("cpu", "memory") if c not in enabled]
    if wanted:
        _write(control, " ".join(f"+{c}" for c in wanted))
