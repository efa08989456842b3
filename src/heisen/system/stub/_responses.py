"""WireMock's `response` object: parsed once, rendered to bytes once.

A stub's reply bytes do not change between requests, so they are built when
the mapping is loaded (`ResponseSpec.wire`) and written as they are; only a
client that asked to close the connection gets a variant with
`Connection: close`. Bodies come from `body`, `jsonBody`, `base64Body` or
`bodyFileName` (a file under `ROOT/__files`).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path as FsPath
from typing import Any

from heisen._serialised import JsonObject
from heisen.errors import did_you_mean
from heisen.system.stub._delays import (
    MAX_DELAY_MS,
    ChunkedDribble,
    Distribution,
    parse_distribution,
    parse_dribble,
)
from heisen.system.stub._faults import FAULTS, Fault
from heisen.system.stub._matchers import Path, Report

RESPONSE_KEYS = (
    "status",
    "statusMessage",
    "headers",
    "body",
    "jsonBody",
    "base64Body",
    "bodyFileName",
    "fixedDelayMilliseconds",
    "delayDistribution",
    "chunkedDribbleDelay",
    "fault",
    "proxyBaseUrl",
    "additionalProxyRequestHeaders",
    "removeProxyRequestHeaders",
    "proxyUrlPrefixToRemove",
    "transformers",
    "transformerParameters",
)
BODY_KEYS = ("body", "jsonBody", "base64Body", "bodyFileName")


@dataclass(frozen=True, slots=True)
class ProxySpec:
    base_url: str
    add_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: frozenset[str] = frozenset()
    prefix_to_remove: str = ""


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    status: int
    status_message: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fixed_delay_ms: float | None = None
    distribution: Distribution | None = None
    dribble: ChunkedDribble | None = None
    fault: Fault | None = None
    proxy: ProxySpec | None = None
    wire: bytes = b""
    wire_close: bytes = b""

    @property
    def is_plain(self) -> bool:
        """True when the reply is written at once: no delay, fault, dribble or proxy."""
        return (
            self.fixed_delay_ms is None
            and self.distribution is None
            and self.dribble is None
            and self.fault is None
            and self.proxy is None
        )

    def head(self, stub_id: str, *, length: int | None, close: bool) -> bytes:
        return render_head(self.status, self.status_message, self.headers, stub_id, length, close)


def render_head(
    status: int,
    message: str,
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    stub_id: str | None,
    length: int | None,
    close: bool,
) -> bytes:
    lines = [f"HTTP/1.1 {status} {message}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if stub_id:
        lines.append(f"Matched-Stub-Id: {stub_id}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def parse_response(
    data: Any, path: Path, report: Report, files: FsPath | None, stub_id: str
) -> ResponseSpec | None:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        report(path, 'response is an object such as {"status": 200, "body": "ok"}')
        return None
    failed = False

    def note(where: Path, message: str) -> None:
        nonlocal failed
        failed = True
        report(where, message)

    for key in data:
        if key not in RESPONSE_KEYS:
            note(
                (*path, key), f"unknown response key {key!r}{did_you_mean(str(key), RESPONSE_KEYS)}"
            )
    status = data.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        note((*path, "status"), f"status is an HTTP status code (100-999), not {status!r}")
        status = 500
    message = data.get("statusMessage") or reason(status)
    if not isinstance(message, str) or "\n" in message or "\r" in message:
        note((*path, "statusMessage"), "statusMessage is a one-line string")
    headers = _headers(data.get("headers"), (*path, "headers"), note)
    body = _body(data, path, note, files)
    fixed = data.get("fixedDelayMilliseconds")
    if fixed is not None and (
        isinstance(fixed, bool)
        or not isinstance(fixed, (int, float))
        or not 0 <= fixed <= MAX_DELAY_MS  # also false for NaN
    ):
        note(
            (*path, "fixedDelayMilliseconds"),
            f"fixedDelayMilliseconds is a number from 0 to {MAX_DELAY_MS:g} (one hour), not {fixed!r}",
        )
        fixed = None
    distribution = None
    if "delayDistribution" in data:
        distribution = parse_distribution(
            data["delayDistribution"], (*path, "delayDistribution"), note
        )
    dribble = None
    if "chunkedDribbleDelay" in data:
        dribble = parse_dribble(data["chunkedDribbleDelay"], (*path, "chunkedDribbleDelay"), note)
    fault = None
    if "fault" in data:
        try:
            fault = Fault(data["fault"])
        except ValueError:
            note((*path, "fault"), f"unknown fault {data['fault']!r}; one of {', '.join(FAULTS)}")
    proxy = _proxy(data, path, note)
    if failed or body is None:
        return None
    spec = ResponseSpec(
        int(status),
        str(message),
        headers,
        body,
        float(fixed) if fixed is not None else None,
        distribution,
        dribble,
        fault,
        proxy,
    )
    wire = spec.head(stub_id, length=len(body), close=False) + body
    wire_close = spec.head(stub_id, length=len(body), close=True) + body
    return ResponseSpec(
        spec.status,
        spec.status_message,
        spec.headers,
        spec.body,
        spec.fixed_delay_ms,
        spec.distribution,
        spec.dribble,
        spec.fault,
        spec.proxy,
        wire,
        wire_close,
    )


_MANAGED_HEADERS = {"content-length", "transfer-encoding", "connection"}


def _headers(data: Any, path: Path, report: Report) -> tuple[tuple[str, str], ...]:
    if data is None:
        return ()
    if not isinstance(data, dict):
        report(path, "headers is an object of name → value (or list of values)")
        return ()
    found: list[tuple[str, str]] = []
    for name, value in data.items():
        if not isinstance(name, str):
            report((*path, name), f"a header name is a string, not {name!r}")
            continue
        if name.lower() in _MANAGED_HEADERS:
            continue  # the stub frames the body itself
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, (str, int, float)) or "\n" in str(item):
                report((*path, name), "a header value is a one-line string")
                continue
            found.append((name, str(item)))
    return tuple(found)


def _body(data: JsonObject, path: Path, report: Report, files: FsPath | None) -> bytes | None:
    present = [key for key in BODY_KEYS if key in data]
    if len(present) > 1:
        report(path, f"use one of {', '.join(BODY_KEYS)}, not {' and '.join(present)}")
        return None
    if not present:
        return b""
    key = present[0]
    value = data[key]
    if key == "jsonBody":
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ValueError:
            report((*path, key), "jsonBody holds NaN or Infinity, which JSON cannot carry")
            return None
    if not isinstance(value, str):
        report((*path, key), f"{key} is a string")
        return None
    if key == "body":
        return value.encode("utf-8")
    if key == "base64Body":
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            report((*path, key), "base64Body is not valid base64")
            return None
    if files is None:
        report((*path, key), "bodyFileName needs a root directory with __files/")
        return None
    target = (files / value).resolve()
    if not target.is_relative_to(files.resolve()):
        report((*path, key), f"bodyFileName {value!r} points outside {files}")
        return None
    if not target.is_file():
        report((*path, key), f"no such file {files / value}")
        return None
    return target.read_bytes()


def _proxy(data: JsonObject, path: Path, report: Report) -> ProxySpec | None:
    base = data.get("proxyBaseUrl")
    if base is None:
        return None
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        report((*path, "proxyBaseUrl"), "proxyBaseUrl is an http:// or https:// URL")
        return None
    add = data.get("additionalProxyRequestHeaders") or {}
    remove = data.get("removeProxyRequestHeaders") or []
    prefix = data.get("proxyUrlPrefixToRemove") or ""
    if not isinstance(add, dict) or not isinstance(remove, list) or not isinstance(prefix, str):
        report(
            path,
            "proxy options: additionalProxyRequestHeaders {name: value}, "
            "removeProxyRequestHeaders [names], proxyUrlPrefixToRemove string",
        )
        return None
    return ProxySpec(
        base.rstrip("/"),
        tuple((str(k), str(v)) for k, v in add.items()),
        frozenset(str(n).lower() for n in remove),
        prefix,
    )
