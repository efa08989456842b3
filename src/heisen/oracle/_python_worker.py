"""The child process that runs `python:` probes, one call at a time, for heisen.

Run as a script (`python -I _python_worker.py REQUEST_FD REPLY_FD PARENT_PID`),
never imported by heisen: it imports nothing of heisen's, so a probe sees only
its own modules. It ties its life to heisen's (PR_SET_PDEATHSIG, SIGKILL),
then answers requests until its request pipe closes.

Wire format, both ways: a 4-byte big-endian length, then that many bytes of
JSON. The first request is `{"path": [...]}` (the `sys.path` to import probe
modules from); each next one is `{"ref": "module:function", "context":
{...}}`, answered by `{"values": {...}}` or `{"error": "...", "fault":
"pipeline" | "environment"}`. What a probe prints goes to this process's
stdout/stderr, which heisen drains and keeps the tail of; `faulthandler`
writes a traceback there when the probe crashes the interpreter.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import inspect
import json
import os
import struct
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from heisen._serialised import JsonObject

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")
_PLAIN = (str, int, float, bool, type(None))


class ProbeFailure(Exception):
    """What to tell heisen about a call that did not give plain values."""

    def __init__(self, message: str, fault: str) -> None:
        super().__init__(message)
        self.fault = fault


def _tie_to_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if os.getppid() != parent:
        os._exit(137)  # heisen died before the signal was set


def read_message(fd: int) -> Any:
    """One message from `fd`; None at end of file."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    body = _read_exactly(fd, size)
    if body is None:
        return None
    return json.loads(body)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encode_message(message: Any) -> bytes:
    body = json.dumps(message, allow_nan=True).encode()
    return _HEADER.pack(len(body)) + body


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _resolve(ref: str) -> Callable[..., Any]:
    module_name, _, name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # an import may raise anything, SystemExit included
        raise ProbeFailure(f"cannot import {module_name!r}: {_describe(exc)}", "pipeline") from exc
    function = getattr(module, name, None)
    if function is None:
        raise ProbeFailure(
            f"has no function: module {module_name!r} has no attribute {name!r}", "pipeline"
        )
    if not callable(function):
        raise ProbeFailure(f"is not callable (it is a {type(function).__name__})", "pipeline")
    return function  # type: ignore[no-any-return]


def call_kwargs(function: Callable[..., Any], context: Mapping[str, Any]) -> JsonObject:
    """The entries of `context` that `function` names as parameters (all of them for **kwargs)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(context)
    names = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return {name: value for name, value in context.items() if name in names}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}, line {last.lineno})"
    return text


def plain_problem(value: Any, where: str = "the result", depth: int = 0) -> str | None:
    """Why `value` is not plain data (dict with str keys, list, str, int, float, bool, None)."""
    if depth > 100:
        return f"{where} is nested more than 100 levels deep"
    if isinstance(value, _PLAIN):
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = plain_problem(item, f"{where}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key of type {type(key).__name__} ({key!r}); keys must be str"
            problem = plain_problem(item, f"{where}[{key!r}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__module__}.{type(value).__qualname__}"


def run_probe(ref: str, context: Mapping[str, Any]) -> JsonObject:
    """Call the probe; its values (a mapping as is, anything else as `value`), or ProbeFailure."""
    function = _resolve(ref)
    try:
        result = function(**call_kwargs(function, context))
        if inspect.isawaitable(result):
            import asyncio

            result = asyncio.run(_await(result))
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are the probe's too
        raise ProbeFailure(
            ("" if isinstance(exc, SystemExit) else "raised ") + _describe(exc),
            "environment",
        ) from exc
    values = dict(result) if isinstance(result, dict) else {"value": result}
    problem = plain_problem(values if isinstance(result, dict) else result)
    if problem:
        raise ProbeFailure(
            f"returned data that is not plain: {problem}; a probe returns a dict, list, str, "
            "int, float, bool or None (nested as JSON allows)",
            "pipeline",
        )
    return values


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _reply(ref: str, context: Mapping[str, Any]) -> bytes:
    try:
        reply: JsonObject = {"values": run_probe(ref, context)}
    except ProbeFailure as exc:
        reply = {"error": str(exc), "fault": exc.fault}
    try:
        data = encode_message(reply)
    except (TypeError, ValueError, RecursionError) as exc:
        data = encode_message(
            {"error": f"returned data JSON cannot hold: {exc}", "fault": "pipeline"}
        )
    if len(data) > MAX_MESSAGE_BYTES:
        size = len(data) / (1024 * 1024)
        data = encode_message(
            {
                "error": f"returned {size:.1f} MB of data, more than the "
                f"{MAX_MESSAGE_BYTES // (1024 * 1024)} MB a probe may return",
                "fault": "pipeline",
            }
        )
    return data


def main(argv: list[str]) -> int:
    request_fd, reply_fd, parent = (int(arg) for arg in argv[1:4])
    _tie_to_parent(parent)
    faulthandler.enable()
    setup = read_message(request_fd)
    if setup is None:
        return 0
    sys.path[:] = list(setup["path"])
    while True:
        request = read_message(request_fd)
        if request is None:
            return 0
        _write_all(reply_fd, _reply(str(request["ref"]), request["context"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
