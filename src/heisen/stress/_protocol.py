"""Which protocol a burst speaks when its request says `protocol: auto`.

Without TLS, the probe asks the server the question a prior-knowledge h2c
burst would: it opens one TCP connection, writes the HTTP/2 connection
preface and an empty SETTINGS frame, and reads. An HTTP/2 server must answer
with a SETTINGS frame (RFC 9113, 3.4): then the burst is h2. Anything else
(an HTTP/1.1 `400`, a close, a reset, bytes that are not a frame, or silence
until `timeout_s`) means the server does not speak h2c, and the burst uses
the HTTP/1.1 barrier. With TLS, the handshake's ALPN result decides: the
context must offer `h2` and `http/1.1`; a server that picks nothing speaks
HTTP/1.1. The probe connection is always closed before `negotiate` returns.

A target that accepts no connection raises `SystemUnavailable`, as a burst
would. Answers are cached per (host, port, TLS context) for the life of the
process, so the trials of a phase probe once, not once per burst; the cache
is bounded (`CACHE_SIZE`, least recently used out first).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from heisen.errors import SystemUnavailable

if TYPE_CHECKING:
    from heisen.stress._tls import TlsClient

__all__ = [
    "CACHE_SIZE",
    "PROBE_TIMEOUT_S",
    "Asked",
    "Negotiated",
    "Protocol",
    "forget_negotiated",
    "negotiate",
    "resolve",
]

Protocol = Literal["h2", "http/1.1"]
Asked = Literal["auto", "http/1.1", "h2"]

PROBE_TIMEOUT_S = 2.0
"""How long the h2c probe waits for the server's SETTINGS (a server says it at once)."""

CACHE_SIZE = 256
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS = 0x4
_GOAWAY = 0x7
# a frame head: length (3 bytes), type, flags, stream id (4 bytes)
_EMPTY_SETTINGS = b"\x00\x00\x00" + bytes([_SETTINGS]) + b"\x00" * 5
# a GOAWAY (length 8) on stream 0: last stream 0, error code NO_ERROR
_GOAWAY_NO_ERROR = b"\x00\x00\x08" + bytes([_GOAWAY]) + b"\x00" * 5 + b"\x00" * 8


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The protocol a target speaks and how the probe decided it, in words."""

    protocol: Protocol
    reason: str


_Key = tuple[str, int, "TlsClient | None"]
_cache: OrderedDict[_Key, Negotiated] = OrderedDict()


def forget_negotiated() -> None:
    """Empty the cache (a test, or a server that changed what it speaks)."""
    _cache.clear()


async def negotiate(
    host: str,
    port: int,
    *,
    tls: TlsClient | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> Negotiated:
    """h2 or http/1.1 for `host:port`; see the module docstring. Cached per target.

    With `tls`, its context must offer ALPN "h2" and "http/1.1"
    (`TlsClient.make(..., alpn=("h2", "http/1.1"))`): the server can only
    choose among what the client offers."""
    key = (host, port, tls)
    known = _cache.get(key)
    if known is not None:
        _cache.move_to_end(key)
        return known
    if tls is not None:
        found = await _by_alpn(host, port, tls, timeout_s)
    else:
        found = await _by_h2c_preface(host, port, timeout_s)
    _cache[key] = found
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return found


async def resolve(
    asked: Asked, host: str, port: int, *, tls: TlsClient | None = None, timeout_s: float
) -> Negotiated:
    """The protocol a burst speaks: `asked`, or for "auto" what `negotiate` finds."""
    if asked == "auto":
        return await negotiate(host, port, tls=tls, timeout_s=timeout_s)
    return Negotiated(asked, "asked for")


async def _connect(
    host: str, port: int, timeout_s: float, tls: TlsClient | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=tls.context if tls else None,
                server_hostname=(tls.server_hostname or host) if tls else None,
            ),
            timeout=timeout_s,
        )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        from heisen.stress._tls import connect_failure_message

        raise SystemUnavailable(connect_failure_message(host, port, exc)) from exc


async def _by_alpn(host: str, port: int, tls: TlsClient, timeout_s: float) -> Negotiated:
    _, writer = await _connect(host, port, timeout_s, tls)
    try:
        tls_object = writer.get_extra_info("ssl_object")
        chosen = tls_object.selected_alpn_protocol() if tls_object is not None else None
    finally:
        writer.transport.abort()
    if chosen == "h2":
        return Negotiated("h2", "ALPN chose h2")
    if chosen is None:
        return Negotiated("http/1.1", "ALPN chose nothing: the server speaks http/1.1")
    return Negotiated("http/1.1", f"ALPN chose {chosen}")


async def _by_h2c_preface(host: str, port: int, timeout_s: float) -> Negotiated:
    reader, writer = await _connect(host, port, timeout_s, None)
    deadline = time.monotonic() + timeout_s
    try:
        writer.write(PREFACE + _EMPTY_SETTINGS)
        head = await _read_up_to(reader, 9, deadline)
        if head is None:
            return Negotiated("http/1.1", f"no h2c: no answer to the preface within {timeout_s:g}s")
        if len(head) == 9 and head[3] == _SETTINGS and head[5:9] == b"\x00\x00\x00\x00":
            writer.write(_GOAWAY_NO_ERROR)
            return Negotiated("h2", "server answered the h2c preface")
        return Negotiated("http/1.1", f"no h2c: {await _what_came_back(reader, head, deadline)}")
    except (ConnectionResetError, BrokenPipeError):
        return Negotiated("http/1.1", "no h2c: the server reset the connection")
    finally:
        writer.transport.abort()


async def _read_up_to(reader: asyncio.StreamReader, size: int, deadline: float) -> bytes | None:
    """Up to `size` bytes (fewer at end of stream); None when nothing came before `deadline`."""
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            return data or None
        try:
            chunk = await asyncio.wait_for(reader.read(size - len(data)), timeout=left)
        except TimeoutError:
            return data or None
        if not chunk:
            return data
        data += chunk
    return data


async def _what_came_back(reader: asyncio.StreamReader, head: bytes, deadline: float) -> str:
    if not head:
        return "the server closed the connection"
    if head.startswith(b"HTTP/"):
        rest = b""
        if b"\r\n" not in head:
            try:
                rest = await asyncio.wait_for(
                    reader.readline(), timeout=max(deadline - time.monotonic(), 0.001)
                )
            except (TimeoutError, ValueError, ConnectionError):
                rest = b""
        status = (head + rest).split(b"\r\n", 1)[0].decode("latin-1").strip()
        return f"the server answered {status[:80]}"
    return f"the server answered {head!r}, not an HTTP/2 SETTINGS frame"
