"""The client side of TLS for bursts: one SSL context, and what a failed handshake means.

`TlsClient` is handed to `run_burst(..., tls=...)`. The HTTP/1.1 burst must
offer only "http/1.1" in ALPN (a server that picks "h2" would read HTTP/1.1
bytes as garbage); the HTTP/2 burst must offer "h2" and refuses a connection
on which the server picked anything else.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heisen.system import TlsSettings


@dataclass(frozen=True, slots=True)
class TlsClient:
    """A client SSL context; `server_hostname` overrides the name checked and sent in SNI.

    `alpn` is what the context offers, when known (`make` knows it): an HTTP/2
    burst refuses a context known not to offer "h2".
    """

    context: ssl.SSLContext
    server_hostname: str | None = None
    alpn: tuple[str, ...] | None = None

    @classmethod
    def make(
        cls,
        ca: Path | None = None,
        *,
        insecure: bool = False,
        cert: Path | None = None,
        key: Path | None = None,
        alpn: Sequence[str] = ("http/1.1",),
        server_hostname: str | None = None,
    ) -> TlsClient:
        """Verify against `ca` (else the system store) unless `insecure`; `cert`/`key` for mTLS."""
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert is not None:
            context.load_cert_chain(str(cert), str(key) if key is not None else None)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return cls(context, server_hostname, tuple(alpn))

    def hostname_for(self, host: str) -> str:
        """The name the certificate must carry (and SNI sends): `host` unless overridden."""
        return self.server_hostname if self.server_hostname is not None else host


@functools.lru_cache(maxsize=64)
def tls_client(
    settings: TlsSettings | None, alpn: tuple[str, ...] = ("http/1.1",)
) -> TlsClient | None:
    """The client of a pipeline's (or the ad hoc flags') TLS settings offering `alpn`, one
    object per pair (the protocol probe caches its answer per client); None without TLS."""
    if settings is None:
        return None
    return TlsClient(settings.context(alpn), settings.server_name, alpn)


def check_alpn(transport: asyncio.BaseTransport, wanted: str) -> None:
    """Raise AlpnRefused when a TLS server picked a protocol other than `wanted` in ALPN."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return
    selected = ssl_object.selected_alpn_protocol()
    if selected != wanted and (wanted == "h2" or selected is not None):
        raise AlpnRefused(wanted, selected)


class AlpnRefused(ConnectionError):
    """The server finished the handshake but did not pick the protocol the burst speaks."""

    def __init__(self, wanted: str, selected: str | None) -> None:
        super().__init__(wanted, selected)
        self.wanted = wanted
        self.selected = selected


def connect_failure_message(host: str, port: int, exc: BaseException) -> str:
    """Why no connection could be used, naming the TLS problem when there is one."""
    from heisen.stress._pool import unreachable_message  # _pool imports _http1, which imports us

    where = f"{host}:{port}"
    if isinstance(exc, AlpnRefused):
        chose = f"chose {exc.selected!r}" if exc.selected else "chose no protocol"
        other = "over HTTP/1.1" if exc.wanted == "h2" else "over HTTP/2 (http2=True)"
        return (
            f"{where} does not speak {exc.wanted} over TLS: in the handshake (ALPN) it {chose}; "
            f"offer only {exc.wanted!r} (TlsClient.make(alpn=({exc.wanted!r},))) to a server "
            f"that supports it, or burst {other}"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS handshake with {where} failed: certificate verify failed: "
            f"{str(exc.verify_message).rstrip('.')}; pass the CA that signed the server's certificate "
            "(TlsClient.make(ca=...)), name the host it was issued for (server_hostname=...), "
            "or skip verification (insecure=True)"
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        hint = "; does the server speak TLS on that port?" if "WRONG_VERSION" in reason else ""
        return f"TLS handshake with {where} failed: {reason}{hint}"
    return unreachable_message(host, port, exc)
