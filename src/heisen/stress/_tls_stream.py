"""TLS on memory buffers under an HTTP/1.1 connection, so that a burst can seal its tail early.

asyncio's own TLS transport encrypts at `write`, so a tail written at the
release costs an encryption and a pass through its Python layers inside the
release window, and its bytes cannot be written straight to the socket.
Here the TLS state (`ssl.SSLObject` on two `MemoryBIO`s) sits between the
raw TCP transport and the plaintext protocol, which sees an ordinary
transport (`SealedTransport`). The burst seals the tail into its TLS record
before the release (`TlsStream.seal`), sends all of that record but its
last byte with the prime, and releases that one byte like a plain
connection's: no server can authenticate, decrypt and so act on a record
before its last byte has arrived.

While a record is held open nothing else may be written on the connection
(it would land inside the record): bytes the TLS layer wants to send then
(a reply to a post-handshake message) wait until `resume()`.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, cast

from heisen.stress._tls import TlsClient


class TlsStream(asyncio.Protocol):
    """The TLS layer: raw TCP below, `inner` (a plaintext protocol) above."""

    def __init__(self, inner: asyncio.Protocol, tls: TlsClient, hostname: str) -> None:
        self.inner = inner
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = tls.context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=hostname
        )
        self.context = tls.context
        self.raw: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._holding = False
        self._deferred = bytearray()

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        self._shake()

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if not self.handshake.done():
            self._shake()
            if not self.handshake.done() or self.handshake.exception() is not None:
                return
        plain = bytearray()
        closed = False
        while True:
            try:
                chunk = self.ssl_object.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                closed = True
                break
            except ssl.SSLError:
                self.abort()
                return
            if not chunk:
                closed = True
                break
            plain += chunk
        self._flush()
        if plain:
            self.inner.data_received(bytes(plain))
        if closed and self.raw is not None and not self.raw.is_closing():
            if not self.inner.eof_received():
                self.raw.close()

    def eof_received(self) -> bool | None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionResetError("closed during the TLS handshake"))
            return False
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError("closed during the handshake"))
            return
        if self.handshake.exception() is None:
            self.inner.connection_lost(exc)

    # -- the burst's hold -------------------------------------------------
    def seal(self, data: bytes) -> bytes:
        """`data` encrypted into its own record(s), not written; hold the connection meanwhile."""
        self._flush()
        self.ssl_object.write(data)
        self._holding = True
        return self._outgoing.read()

    def resume(self) -> None:
        """The held record is complete on the wire: send what waited for it."""
        self._holding = False
        if self._deferred and self.raw is not None and not self.raw.is_closing():
            self.raw.write(bytes(self._deferred))
        self._deferred.clear()

    # -- internals --------------------------------------------------------
    def write_plain(self, data: bytes) -> None:
        self.ssl_object.write(data)
        self._flush()

    def _shake(self) -> None:
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, OSError) as exc:
            self.handshake.set_exception(exc)
            self.abort()
            return
        self._flush()
        self.handshake.set_result(None)
        self.inner.connection_made(SealedTransport(self))

    def _flush(self) -> None:
        out = self._outgoing.read()
        if not out or self.raw is None or self.raw.is_closing():
            return
        if self._holding:
            self._deferred += out
        else:
            self.raw.write(out)

    def abort(self) -> None:
        if self.raw is not None:
            self.raw.abort()


class SealedTransport(asyncio.Transport):
    """What the plaintext protocol writes to: encrypts each write and sends it at once."""

    def __init__(self, stream: TlsStream) -> None:
        super().__init__()
        self.stream = stream

    def _raw(self) -> asyncio.Transport:
        assert self.stream.raw is not None
        return self.stream.raw

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.stream.write_plain(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self.stream.ssl_object
        if name == "sslcontext":
            return self.stream.context
        if name == "peercert":
            return self.stream.ssl_object.getpeercert()
        return self._raw().get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._raw().get_write_buffer_size()

    def is_closing(self) -> bool:
        return self._raw().is_closing()

    def close(self) -> None:
        self._raw().close()

    def abort(self) -> None:
        self._raw().abort()


def tls_stream(transport: asyncio.BaseTransport | None) -> TlsStream | None:
    """The TLS layer under `transport`, when it is one of ours."""
    return transport.stream if isinstance(transport, SealedTransport) else None


async def open_tls(
    protocol: asyncio.Protocol, host: str, port: int, tls: TlsClient, timeout_s: float
) -> TlsStream:
    """Connect and finish the handshake within `timeout_s`; the error is the handshake's."""
    loop = asyncio.get_running_loop()
    hostname = tls.hostname_for(host)
    deadline = loop.time() + timeout_s
    _, stream = await asyncio.wait_for(
        loop.create_connection(lambda: TlsStream(protocol, tls, hostname), host, port), timeout_s
    )
    try:
        await asyncio.wait_for(asyncio.shield(stream.handshake), max(0.0, deadline - loop.time()))
    except BaseException:
        stream.abort()
        raise
    return stream
