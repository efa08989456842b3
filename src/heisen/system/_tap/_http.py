"""The HTTP/1.x tap: one operation per exchange, a request matched with its response in order.

Design. The two directions are read independently, each from its own buffer:

- the client's side is a sequence of requests: a head (request line and
  headers, up to the empty line), then a body framed by `Content-Length` or
  chunked encoding (with trailers), or no body;
- the server's side is a sequence of responses, each answering the oldest
  request not answered yet (HTTP/1.1 answers in order, pipelined or not).
  Interim responses (1xx but 101) are skipped; the answer to a HEAD and a
  204 or 304 has no body; a response with neither a length nor chunks ends
  with the connection, at `close`.

An exchange becomes a `DependencyOperation` once its response is complete
and its request body was read in full (a server may answer before it reads
the whole body), oldest first, so `take` keeps the order of the requests.
`close` completes whatever is left: answered exchanges keep their `end`,
the others get `end` None and say why in `error`.

Invariants: a buffer only ever holds bytes not yet consumed (each feed
drops its consumed prefix), and a head is searched for its end only in
bytes not searched before, so bytes that arrive one at a time cost no more
than one chunk. Every feed either consumes bytes or stops waiting for more,
hence it terminates.

What the tap cannot follow makes it stop with a reason in `lost`, never an
exception: TLS, the HTTP/2 preface, CONNECT, a switch of protocols (101),
bytes that are not HTTP/1, a head longer than `HEAD_LIMIT`. To follow a new
framing rule, extend `_Body` (the framing of one message) and the place that
chooses it (`_request_body` or `_response_body`).
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from typing import Any

from heisen.system_protocol import DependencyOperation

__all__ = ["HEAD_LIMIT", "HttpDecoder"]

HEAD_LIMIT = 64 * 1024
"""The longest request or response head the tap waits for, in bytes."""

_LINE_LIMIT = 8 * 1024
_TEXT_LIMIT = 120
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_NO_BODY_STATUSES = frozenset({204, 304})
_NO_RESPONSE = "no response: the connection closed"
_CUT_RESPONSE = "the response was cut: the connection closed"
_TOKEN_BYTES = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?", re.DOTALL)

# _Body phases
_LENGTH, _SIZE, _DATA, _DATA_END, _TRAILER, _UNTIL_CLOSE, _DONE = range(7)


class _Lost(Exception):
    """The stream is not HTTP/1 the tap can follow; the message says why."""


class _Body:
    """Where one message's body ends: after a length, after the last chunk and its trailers, or
    with the connection. Request bodies are hashed as their content (chunks joined)."""

    __slots__ = ("hasher", "phase", "remaining")

    def __init__(self, phase: int, length: int = 0, hasher: Any = None) -> None:
        self.phase = _DONE if phase == _LENGTH and length == 0 else phase
        self.remaining = length
        self.hasher = hasher

    def feed(self, buf: bytearray, pos: int) -> int:
        """Consume what belongs to the body from `buf[pos:]`; return where it stopped."""
        end = len(buf)
        while pos < end:
            phase = self.phase
            if phase == _LENGTH or phase == _DATA:
                take = min(self.remaining, end - pos)
                if self.hasher is not None:
                    self.hasher.update(buf[pos : pos + take])
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    if phase == _LENGTH:
                        self.phase = _DONE
                        return pos
                    self.phase = _DATA_END
            elif phase == _UNTIL_CLOSE:
                if self.hasher is not None:
                    self.hasher.update(buf[pos:end])
                return end
            elif phase == _DATA_END:
                if end - pos < 2:
                    return pos
                if buf[pos : pos + 2] != b"\r\n":
                    raise _Lost("a chunk is not followed by CRLF")
                pos += 2
                self.phase = _SIZE
            elif phase == _SIZE or phase == _TRAILER:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > _LINE_LIMIT:
                        raise _Lost("a chunk-size or trailer line longer than 8 KiB")
                    return pos
                line_start, pos = pos, eol + 2
                if phase == _SIZE:
                    size = _chunk_size(buf, line_start, eol)
                    if size:
                        self.remaining = size
                        self.phase = _DATA
                    else:
                        self.phase = _TRAILER
                elif eol == line_start:
                    self.phase = _DONE
                    return pos
            else:
                return pos
        return pos


def _chunk_size(buf: bytearray, start: int, end: int) -> int:
    size = _CHUNK_SIZE.fullmatch(buf, start, end)
    if size is None:
        raise _Lost(f"a chunk size that is not hexadecimal: {bytes(buf[start:end][:40])!r}")
    return int(size[1], 16)


class _Exchange:
    """One request and, once read, its response."""

    __slots__ = (
        "end",
        "error",
        "hasher",
        "idempotency_key",
        "method",
        "request_bytes",
        "request_done",
        "response_bytes",
        "start",
        "status",
        "target",
    )

    def __init__(self, method: str, target: str, start: float, request_bytes: int) -> None:
        self.method = method
        self.target = target
        self.start = start
        self.end: float | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.request_bytes = request_bytes
        self.response_bytes = 0
        self.idempotency_key: str | None = None
        self.hasher = hashlib.sha1(usedforsecurity=False)
        self.request_done = False


class HttpDecoder:
    """The HTTP/1.1 (and 1.0) tap of one connection between a service and an HTTP dependency."""

    def __init__(self, link: str, connection: int) -> None:
        self.link = link
        self.connection = connection
        self.lost: str | None = None
        self._closed = False
        self._done: list[DependencyOperation] = []
        self._exchanges: deque[_Exchange] = deque()
        self._answered = 0  # how many of `_exchanges`, from the oldest, have their response
        # the client's side
        self._client = bytearray()
        self._client_scanned = 0  # bytes of the pending head already searched for its end
        self._request_start: float | None = None  # `now` of the pending head's first byte
        self._request_body: _Body | None = None
        self._reading: _Exchange | None = None
        # the server's side
        self._server = bytearray()
        self._server_scanned = 0
        self._response_body: _Body | None = None

    # --- Decoder -------------------------------------------------------------
    def from_client(self, data: bytes, now: float) -> None:
        if self.lost is None and not self._closed and data:
            try:
                self._client.extend(data)
                self._read_requests(now)
            except _Lost as exc:
                self._lose(str(exc))
            except Exception as exc:  # a tap never raises into the proxy
                self._lose(f"the http tap failed: {type(exc).__name__}: {exc}")

    def from_server(self, data: bytes, now: float) -> None:
        if self.lost is None and not self._closed and data:
            try:
                self._server.extend(data)
                self._read_responses(now)
            except _Lost as exc:
                self._lose(str(exc))
            except Exception as exc:
                self._lose(f"the http tap failed: {type(exc).__name__}: {exc}")

    def take(self) -> list[DependencyOperation]:
        done, self._done = self._done, []
        return done

    def close(self, now: float) -> None:
        if self._closed or self.lost is not None:
            return
        self._closed = True
        body = self._response_body
        if body is not None:
            pending = self._exchanges[self._answered]
            if body.phase == _UNTIL_CLOSE:
                self._answer(pending, now)
            else:
                pending.error = _CUT_RESPONSE
        for exchange in self._exchanges:
            if exchange.end is None and exchange.error is None:
                exchange.error = _NO_RESPONSE
            self._done.append(self._operation(exchange))
        self._exchanges.clear()
        self._answered = 0

    # --- requests ------------------------------------------------------------
    def _read_requests(self, now: float) -> None:
        buf = self._client
        pos = 0
        while pos < len(buf):
            body = self._request_body
            if body is not None:
                reading = self._reading
                assert reading is not None
                stop = body.feed(buf, pos)
                reading.request_bytes += stop - pos
                pos = stop
                if body.phase != _DONE:
                    break
                self._request_read(reading)
                continue
            if self._request_start is None:
                while pos < len(buf) and buf[pos] in b"\r\n":
                    pos += 1
                if pos == len(buf):
                    break
                _check_request_start(buf[pos])
                self._request_start = now
            head_end = buf.find(b"\r\n\r\n", pos + max(0, self._client_scanned - 3))
            if head_end < 0:
                self._client_scanned = len(buf) - pos
                _check_partial_head(buf, pos, "request")
                break
            self._client_scanned = 0
            pos = self._request_head(buf, pos, head_end + 4)
        del buf[:pos]

    def _request_head(self, buf: bytearray, pos: int, stop: int) -> int:
        text = buf[pos : stop - 2].decode("latin-1")
        lower = text.lower()
        method, target = _request_line(text[: text.find("\r\n")])
        start = self._request_start
        assert start is not None
        self._request_start = None
        exchange = _Exchange(method, target, start, stop - pos)
        length = _content_length(_header(text, lower, "content-length"))
        encodings = _header(text, lower, "transfer-encoding")
        chunked = bool(encodings) and _is_chunked(encodings)
        if encodings and not chunked:
            raise _Lost(f"a request body of unknown length (Transfer-Encoding: {encodings})")
        keys = _header(text, lower, "idempotency-key") or _header(text, lower, "x-idempotency-key")
        if keys:
            exchange.idempotency_key = keys[0]
        self._exchanges.append(exchange)
        if chunked:
            self._read_body(exchange, _Body(_SIZE, hasher=exchange.hasher))
        elif length:
            self._read_body(exchange, _Body(_LENGTH, length, exchange.hasher))
        else:
            self._request_read(exchange)
        return stop

    def _read_body(self, exchange: _Exchange, body: _Body) -> None:
        self._reading = exchange
        self._request_body = body

    def _request_read(self, exchange: _Exchange) -> None:
        exchange.request_done = True
        self._reading = None
        self._request_body = None
        self._flush()

    # --- responses -----------------------------------------------------------
    def _read_responses(self, now: float) -> None:
        buf = self._server
        pos = 0
        while pos < len(buf):
            body = self._response_body
            if body is not None:
                answering = self._exchanges[self._answered]
                stop = body.feed(buf, pos)
                answering.response_bytes += stop - pos
                pos = stop
                if body.phase != _DONE:
                    break
                self._answer(answering, now)
                continue
            if self._server_scanned == 0:
                while pos < len(buf) and buf[pos] in b"\r\n":
                    pos += 1
                if pos == len(buf):
                    break
            if self._answered >= len(self._exchanges):
                raise _Lost("the server sent bytes before a request asked for them")
            head_end = buf.find(b"\r\n\r\n", pos + max(0, self._server_scanned - 3))
            if head_end < 0:
                self._server_scanned = len(buf) - pos
                prefix = bytes(buf[pos : pos + 5])
                if not b"HTTP/".startswith(prefix):
                    raise _Lost(f"the server's answer is not HTTP/1: {prefix!r}")
                _check_partial_head(buf, pos, "response")
                break
            self._server_scanned = 0
            pos = self._response_head(buf, pos, head_end + 4, now)
        del buf[:pos]

    def _response_head(self, buf: bytearray, pos: int, stop: int, now: float) -> int:
        exchange = self._exchanges[self._answered]
        exchange.response_bytes += stop - pos
        text = buf[pos : stop - 2].decode("latin-1")
        status = _status(text[: text.find("\r\n")])
        if status == 101:
            exchange.status = status
            self._answer(exchange, now)
            raise _Lost("the connection switched protocols (101 Switching Protocols)")
        if status < 200:
            return stop
        exchange.status = status
        lower = text.lower()
        length = _content_length(_header(text, lower, "content-length"))
        encodings = _header(text, lower, "transfer-encoding")
        if exchange.method == "HEAD" or status in _NO_BODY_STATUSES:
            self._answer(exchange, now)
        elif encodings:
            self._response_body = _Body(_SIZE if _is_chunked(encodings) else _UNTIL_CLOSE)
        elif length is not None:
            body = _Body(_LENGTH, length)
            if body.phase == _DONE:
                self._answer(exchange, now)
            else:
                self._response_body = body
        else:
            self._response_body = _Body(_UNTIL_CLOSE)
        return stop

    def _answer(self, exchange: _Exchange, now: float) -> None:
        exchange.end = now
        self._answered += 1
        self._response_body = None
        self._flush()

    # --- operations ----------------------------------------------------------
    def _flush(self) -> None:
        exchanges = self._exchanges
        while self._answered and exchanges[0].request_done:
            self._answered -= 1
            self._done.append(self._operation(exchanges.popleft()))

    def _lose(self, reason: str) -> None:
        self.lost = reason
        for exchange in list(self._exchanges)[: self._answered]:
            self._done.append(self._operation(exchange))
        self._exchanges.clear()
        self._answered = 0

    def _operation(self, exchange: _Exchange) -> DependencyOperation:
        method, target = exchange.method, exchange.target
        path, query = _path_and_query(target)
        text = target if len(target) <= _TEXT_LIMIT else target[: _TEXT_LIMIT - 1] + "…"
        return DependencyOperation(
            link=self.link,
            protocol="http",
            connection=self.connection,
            start=exchange.start,
            end=exchange.end,
            command=method,
            keys=(path,),
            access="read" if method in _READS else "write",
            text=f"{method} {text}",
            error=exchange.error,
            detail={
                "method": method,
                "path": path,
                "query": query,
                "status": exchange.status,
                "request_bytes": exchange.request_bytes,
                "response_bytes": exchange.response_bytes,
                "idempotency_key": exchange.idempotency_key,
                "body_sha1": exchange.hasher.hexdigest() if exchange.request_done else None,
            },
        )


# --- the grammar, as far as the tap needs it -----------------------------------
def _check_request_start(first: int) -> None:
    if first == 0x16:
        raise _Lost("TLS: the connection is encrypted")
    if first not in _TOKEN_BYTES:
        raise _Lost(f"the client's bytes are not HTTP/1: they start with {bytes([first])!r}")


def _check_partial_head(buf: bytearray, pos: int, what: str) -> None:
    """A head still waiting for its end: judge its first line as soon as it is whole."""
    eol = buf.find(b"\r\n", pos)
    if eol >= 0:
        line = buf[pos:eol].decode("latin-1")
        if what == "request":
            _request_line(line)
        else:
            _status(line)
    elif len(buf) - pos > _LINE_LIMIT:
        raise _Lost(f"a {what} line longer than 8 KiB, or bytes that are not HTTP/1")
    if len(buf) - pos > HEAD_LIMIT:
        raise _Lost(f"a {what} head longer than {HEAD_LIMIT // 1024} KiB")


def _request_line(line: str) -> tuple[str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _Lost(f"the client's bytes are not HTTP/1: {line[:40]!r}")
    method, target, version = parts
    if method == "PRI" and version == "HTTP/2.0":
        raise _Lost("the HTTP/2 preface: the connection speaks HTTP/2")
    if not version.startswith("HTTP/1.") or not _TOKEN_BYTES.issuperset(method.encode()):
        raise _Lost(f"the client's bytes are not HTTP/1: {line[:40]!r}")
    if method == "CONNECT":
        raise _Lost("CONNECT: the connection becomes a tunnel")
    return method, target


def _status(line: str) -> int:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise _Lost(f"the server's answer is not HTTP/1: {line[:40]!r}")
    return int(code)


def _header(text: str, lower: str, name: str) -> list[str]:
    """The values of header `name` (lower case) in a head whose every line ends with CRLF;
    `lower` is `text.lower()`."""
    values: list[str] = []
    pattern = f"\r\n{name}:"
    at = lower.find(pattern)
    while at >= 0:
        begin = at + len(pattern)
        eol = text.find("\r\n", begin)
        values.append(text[begin:eol].strip())
        at = lower.find(pattern, eol)
    return values


def _content_length(values: list[str]) -> int | None:
    if not values:
        return None
    lengths = set()
    for value in values:
        for text in value.split(","):
            text = text.strip()
            if not text.isdigit() or not text.isascii():
                raise _Lost(f"a Content-Length that is not a number: {text[:20]!r}")
            lengths.add(int(text))
    if len(lengths) > 1:
        raise _Lost("a Content-Length with two different values")
    return lengths.pop()


def _is_chunked(values: list[str]) -> bool:
    """Whether the last transfer coding (of all `Transfer-Encoding` values) is chunked."""
    return values[-1].rsplit(",", 1)[-1].strip().lower() == "chunked"


def _path_and_query(target: str) -> tuple[str, str | None]:
    if target.startswith(("http://", "https://")):
        slash = target.find("/", target.index("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    path, mark, query = target.partition("?")
    return path, query if mark else None
