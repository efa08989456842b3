"""Secrets out of what heisen writes: passwords in DSNs and URLs, secret-looking keys."""

from __future__ import annotations

import re
from typing import Any

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@"
)
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)=([^\s&;]+)")
_SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|authorization)")
MASK = "***"


def redact_text(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)


def redact(value: Any) -> Any:
    """A copy of `value` with secrets masked, through mappings and lists."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: (
                MASK
                if isinstance(key, str) and _SECRET_KEYS.search(key) and isinstance(item, str)
                else redact(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
