"""The one place that builds rich consoles: NO_COLOR, width, ASCII for --ci, and which stream.

Results (the summary, the ladder, findings, report paths) go to stdout with
`make_console(stderr=False)`; progress, warnings and errors go to stderr. A
console wraps at the terminal's width only on a terminal: in CI (`plain`) or
into a pipe or file a line is never broken in the middle (an explicit
`COLUMNS` still sets the width of a non-terminal, non-plain console). A
plain console writes ASCII only: rich draws its tables with `+ - |` and the
few symbols heisen prints are spelled out (`ASCII_SPELLING`).

Everything written through here is redacted (`heisen._redact`): a secret in
an error message, a replay command or a finding never reaches the terminal.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import unicodedata
from typing import IO, Any, cast

# Wide enough that no line of heisen's is broken; the padding rich adds up to it is stripped.
UNWRAPPED_WIDTH = 10_000

ASCII_SPELLING = {
    "▶": ">",
    "·": "-",
    "•": "*",
    "✓": "ok",
    "✗": "x",
    "…": "...",
    "—": "-",
    "\u2013": "-",  # en dash
    "→": "->",
    "←": "<-",
    "\u00d7": "x",  # multiplication sign
    "≤": "<=",
    "≥": ">=",
    "≈": "~",
    "±": "+/-",
    "µ": "u",
    "\u2018": "'",
    "\u2019": "'",
    "“": '"',
    "”": '"',
}

_TRAILING_PADDING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)(?=\n|$)")


def make_console(*, stderr: bool = True, plain: bool = False) -> Any:
    """A console on stderr (progress, logs, errors) or stdout (results); `plain` for --ci logs."""
    no_color = bool(os.environ.get("NO_COLOR")) or plain
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty() and not plain
    width = None
    unwrapped = False
    if not terminal:
        columns = os.environ.get("COLUMNS", "")
        unwrapped = plain or not columns.isdigit()
        width = UNWRAPPED_WIDTH if unwrapped else int(columns)
    output: _Redacting | _Unpadded = _Plain(stream) if plain else _Redacting(stream)
    if unwrapped:
        output = _Unpadded(output)
    return _console_class()(
        file=cast(IO[str], output),  # duck-typed: write, flush, isatty
        no_color=no_color,
        color_system=None if no_color else "auto",
        width=width,
        highlight=False,
        soft_wrap=False,
        force_terminal=None if not plain else False,
        emoji=False,
    )


def ascii_text(text: str) -> str:
    """`text` in ASCII: heisen's symbols spelled out, accents dropped, anything else as `?`."""
    if text.isascii():
        return text
    spelled = "".join(ASCII_SPELLING.get(char, char) for char in text)
    decomposed = unicodedata.normalize("NFKD", spelled)
    return "".join(
        char if char.isascii() else _box_char(char)
        for char in decomposed
        if not unicodedata.combining(char)
    )


def _box_char(char: str) -> str:
    """A box-drawing or block character as the ASCII line it draws; any other as `?`."""
    name = unicodedata.name(char, "")
    if name.startswith("BOX DRAWINGS"):
        if "VERTICAL" in name and "HORIZONTAL" in name:
            return "+"
        if "VERTICAL" in name:
            return "|"
        if "HORIZONTAL" in name:
            return "-"
        return "+"
    if name.startswith(("BLACK", "WHITE", "FULL BLOCK", "LIGHT SHADE")):
        return "#"
    return "?"


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


class _Plain(_Redacting):
    """A redacting stream that writes ASCII only; its encoding makes rich draw ASCII tables."""

    encoding = "ascii"

    def write(self, text: str) -> int:
        super().write(ascii_text(text))
        return len(text)

    def isatty(self) -> bool:
        return False


class _Unpadded:
    """A stream that drops the spaces rich pads a line with up to the console's width."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_TRAILING_PADDING.sub(r"\1", text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
