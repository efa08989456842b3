"""JSON inputs (an OpenAPI document, a stub mapping) read as safely as the YAML ones.

`load_json_file` applies `heisen._yaml`'s rules to a JSON file: a regular
file under the size cap, UTF-8 text, nesting at most `MAX_DEPTH` levels
(the standard decoder recurses, so a deep document would otherwise end in
`RecursionError`), and a `PipelineError` with the line and column of a
syntax error. The result is a `YamlDocument` without positions: problems in
it are located by their JSON path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from heisen._yaml import MAX_DEPTH, YamlDocument, read_capped
from heisen.errors import PipelineError, Problem

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def load_json_file(path: Path) -> YamlDocument:
    return load_json_text(read_capped(path), source=str(path))


def load_json_text(raw: bytes | str, *, source: str) -> YamlDocument:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PipelineError(
                source, [Problem("", f"not UTF-8 text (byte {exc.start}): is this a binary file?")]
            ) from None
    else:
        text = raw
    deep = _too_deep(text)
    if deep is not None:
        line, column = deep
        message = f"the document nests deeper than {MAX_DEPTH} levels; refusing to load it"
        raise PipelineError(source, [Problem("", message, line, column)])
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(
            source, [Problem("", f"invalid JSON: {exc.msg}", exc.lineno, exc.colno)]
        ) from None
    except RecursionError:  # unreachable after the depth check; kept as a guard
        raise PipelineError(source, [Problem("", "the document nests too deeply")]) from None
    return YamlDocument(source=source, data=data)


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where the text first opens more than MAX_DEPTH brackets (strings skipped), else None."""
    depth = 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                offset = token.start()
                line = text.count("\n", 0, offset) + 1
                return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
        elif char in "]}":
            depth -= 1
    return None
