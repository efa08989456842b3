"""One HTTP request as heisen sends it, independent of the protocol version."""

from __future__ import annotations

from dataclasses import dataclass

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """Method, path (with its query string), extra headers and body of one request.

    `Host` and `Content-Length` are added when encoding unless given in `headers`.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def get(cls, path: str, headers: tuple[tuple[str, str], ...] = ()) -> HttpRequest:
        return cls("GET", path, headers)

    @classmethod
    def post(cls, path: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> HttpRequest:
        return cls("POST", path, headers, body)

    def encode_http1(self, host: str) -> bytes:
        """The request on the wire as HTTP/1.1 (keep-alive), `host` being `name[:port]`."""
        lines = [f"{self.method} {self.path} HTTP/1.1"]
        has_host = has_length = False
        for name, value in self.headers:
            lowered = name.lower()
            has_host = has_host or lowered == "host"
            has_length = has_length or lowered in ("content-length", "transfer-encoding")
            lines.append(f"{name}: {value}")
        if not has_host:
            lines.insert(1, f"Host: {host}")
        if not has_length and (self.body or self.method in _BODY_METHODS):
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1") + self.body


@dataclass(frozen=True, slots=True)
class Repeat:
    """`make_request` that sends the same request every time (picklable, for workers)."""

    request: HttpRequest

    def __call__(self, index: int) -> HttpRequest:
        return self.request
