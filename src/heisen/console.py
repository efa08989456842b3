"""The one place that builds rich consoles: NO_COLOR, width, stderr for humans, stdout for --json."""

from __future__ import annotations

import os
import sys
from typing import Any


def make_console(*, stderr: bool = True, plain: bool = False) -> Any:
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR")) or plain
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty():
        width = int(os.environ.get("COLUMNS", "100"))
    return Console(
        file=stream,
        no_color=no_color,
        color_system=None if no_color else "auto",
        width=width,
        highlight=False,
        soft_wrap=False,
        force_terminal=None if not plain else False,
        emoji=False,
    )


def write_json(data: Any) -> None:
    """Machine-readable output: JSON on stdout and nothing else there."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()
