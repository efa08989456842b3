"""Is a run directory usable? Asked once, before anything starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from heisen.errors import SystemUnavailable


def ensure_writable_dir(path: Path) -> None:
    """Create `path` if needed and write a file in it; SystemUnavailable (exit 3) naming it if not.

    Trying is the only honest test: /proc is a directory root may "access",
    yet nothing can be created in it; a path under a regular file fails in
    mkdir; a full disk fails in the write.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".heisen-probe-") as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise SystemUnavailable(
            f"the run directory {path} cannot be written: {reason}{where}; "
            "choose another with --run-dir"
        ) from None
