"""The one place that builds rich consoles: NO_COLOR, width, stderr for humans, stdout for --json.

Everything written through here is redacted (`heisen._redact`): a secret in
an error message, a replay command or a finding never reaches the terminal.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import IO, Any, cast


def make_console(*, stderr: bool = True, plain: bool = False) -> Any:
    no_color = bool(os.environ.get("NO_COLOR")) or plain
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty():
        width = int(os.environ.get("COLUMNS", "100"))
    return _console_class()(
        file=cast(IO[str], _Redacting(stream)),  # duck-typed: write, flush, isatty
        no_color=no_color,
        color_system=None if no_color else "auto",
        width=width,
        highlight=False,
        soft_wrap=False,
        force_terminal=None if not plain else False,
        emoji=False,
    )


@functools.cache
def _console_class() -> Any:
    """rich's Console, redacting strings before they are wrapped (rich is imported lazily)."""
    from rich.console import Console

    from heisen._redact import redact_text

    class RedactingConsole(Console):
        def print(self, *objects: Any, **options: Any) -> None:
            """Strings are redacted whole, before a line break can split a secret."""
            redacted = [redact_text(o) if isinstance(o, str) else o for o in objects]
            super().print(*redacted, **options)

    return RedactingConsole


def write_json(data: Any) -> None:
    """Machine-readable output: JSON on stdout and nothing else there."""
    import json

    from heisen._redact import redact

    sys.stdout.write(json.dumps(redact(data), indent=2, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


class _Redacting:
    """A text stream that masks secrets in what is written to it (see `heisen._redact`)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from heisen._redact import redact_text

        self._stream.write(redact_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)
