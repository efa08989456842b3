"""HTTP/1.1 request parsing for the stub's own server, and the request it yields.

The parser takes the bytes buffered on a connection and returns one whole
request and the bytes it consumed, or `None` when more bytes are needed.
Bodies come with Content-Length or chunked transfer coding. Limits keep a
hostile client from growing a buffer without bound.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HttpRequest:
    """One parsed request; the query and cookies are parsed on first use."""

    __slots__ = (
        "_cookies",
        "_query",
        "body",
        "client",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query_string",
        "raw_headers",
        "received_at",
        "target",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        raw_headers: list[tuple[str, str]],
        body: bytes,
        received_at: float,
        client: str = "",
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.raw_headers = raw_headers
        self.body = body
        self.received_at = received_at
        self.client = client
        path, _, query = target.partition("?")
        self.path = path
        self.query_string = query
        headers: dict[str, list[str]] = {}
        for name, value in raw_headers:
            headers.setdefault(name.lower(), []).append(value)
        self.headers = headers
        connection = headers.get("connection", ("",))[0].lower()
        self.keep_alive = (
            connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        )
        self._query: dict[str, list[str]] | None = None
        self._cookies: dict[str, list[str]] | None = None

    def header(self, name: str) -> list[str]:
        return self.headers.get(name.lower(), [])

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    @property
    def cookies(self) -> dict[str, list[str]]:
        if self._cookies is None:
            found: dict[str, list[str]] = {}
            for line in self.header("cookie"):
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(line)
                except CookieError:
                    continue
                for name, morsel in jar.items():
                    found.setdefault(name, []).append(morsel.value)
            self._cookies = found
        return self._cookies

    def body_text(self) -> str:
        return self.body.decode("utf-8", "replace")


def parse_request(buffer: bytes, now: float, client: str = "") -> tuple[HttpRequest, int] | None:
    """The first whole request in `buffer` and its length in bytes, or None if incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise BadRequest(431, "Request Header Fields Too Large")
        return None
    lines = buffer[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "Bad Request")
    method, target, version = parts
    raw_headers: list[tuple[str, str]] = []
    length = 0
    chunked = False
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(400, "Bad Request")
        value = value.strip()
        raw_headers.append((name, value))
        lower = name.lower()
        if lower == "content-length":
            try:
                length = int(value)
            except ValueError:
                raise BadRequest(400, "Bad Request") from None
        elif lower == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    start = end + 4
    if chunked:
        decoded = _dechunk(buffer, start)
        if decoded is None:
            return None
        body, consumed = decoded
    else:
        if length > MAX_BODY_BYTES:
            raise BadRequest(413, "Content Too Large")
        if len(buffer) - start < length:
            return None
        body, consumed = buffer[start : start + length], start + length
    return HttpRequest(method, target, version, raw_headers, body, now, client), consumed


def _dechunk(buffer: bytes, position: int) -> tuple[bytes, int] | None:
    pieces: list[bytes] = []
    total = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        try:
            size = int(buffer[position:line_end].split(b";")[0], 16)
        except ValueError:
            raise BadRequest(400, "Bad Request") from None
        total += size
        if total > MAX_BODY_BYTES:
            raise BadRequest(413, "Content Too Large")
        data_start = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None
            return b"".join(pieces), trailer_end + 4
        if len(buffer) < data_start + size + 2:
            return None
        pieces.append(buffer[data_start : data_start + size])
        position = data_start + size + 2
