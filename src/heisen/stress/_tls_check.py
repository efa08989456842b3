"""Before the load: does the server accept this TLS client at all?

Over TLS 1.2 a refused handshake (an untrusted certificate, a client
certificate the server requires and was not given) fails while connecting.
Over TLS 1.3 the client's half of the handshake is done before the server
has read the client's certificate: a server that refuses it sends its alert
after, and a burst would only see every connection closed. So the check
connects once, completes the handshake, and reads for `ALERT_WAIT_S`
without sending anything: an alert in that time (it follows the handshake
at once), or the connection closed (what asyncio servers do instead of
sending the alert; an HTTP server otherwise waits seconds for a request on
a new connection) is SystemUnavailable naming it; silence, or bytes that are
not an alert (session tickets are read inside the TLS layer), means accepted. Each
(host, port, client) is checked once per process.
"""

from __future__ import annotations

import asyncio
import ssl

from heisen.errors import SystemUnavailable
from heisen.stress._tls import TlsClient, connect_failure_message

ALERT_WAIT_S = 0.25
_accepted: set[tuple[str, int, TlsClient]] = set()


async def check_tls_accepted(
    host: str, port: int, tls: TlsClient, *, flags: bool = False, timeout_s: float = 5.0
) -> None:
    """SystemUnavailable naming the TLS problem when `host:port` refuses `tls`; its advice
    names the pipeline's `tls:` keys, or with `flags` the ad hoc command line's."""
    key = (host, port, tls)
    if key in _accepted:
        return
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=tls.context, server_hostname=tls.hostname_for(host)
            ),
            timeout=timeout_s,
        )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        raise SystemUnavailable(_message(host, port, exc, flags)) from exc
    try:
        first = await asyncio.wait_for(reader.read(1), timeout=ALERT_WAIT_S)
    except TimeoutError:
        first = None
    except ssl.SSLError as exc:
        raise SystemUnavailable(_message(host, port, exc, flags)) from exc
    except OSError:
        pass  # a reset is the load's to record, as it would be without TLS
    finally:
        writer.transport.abort()
    if first == b"":
        raise SystemUnavailable(
            f"{host}:{port} closed the TLS connection right after the handshake, before any "
            "request: a server that requires a client certificate does so when given none "
            f"({'--cert and --key' if flags else 'tls: {cert: ..., key: ...}'}), or one it "
            "does not trust"
        )
    _accepted.add(key)


def _message(host: str, port: int, exc: BaseException, flags: bool) -> str:
    from heisen.system import tls_failure_message

    where = f"{host}:{port}"
    return tls_failure_message(where, exc, flags=flags) or connect_failure_message(host, port, exc)
