"""The ad hoc TLS and target flags, the same for every ad hoc command that sends to a --url.

`--cacert`, `--insecure`, `--cert`, `--key` say how to speak TLS to an https:// URL
(`tls_of_flags` checks them and makes the `TlsSettings`); `--allow-host` names a host
other than loopback that may be sent to, by the rule of a pipeline's `allow_hosts:`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from heisen.system import TlsSettings

CacertOpt = Annotated[
    str | None,
    typer.Option(help="Ad hoc, https: PEM file of the CA that signed the server's certificate."),
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Ad hoc, https: do not verify the server.")
]
CertOpt = Annotated[
    str | None, typer.Option(help="Ad hoc, https: PEM client certificate (mutual TLS).")
]
KeyOpt = Annotated[str | None, typer.Option(help="Ad hoc, https: PEM private key of --cert.")]
AllowHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Ad hoc: a host other than loopback that may be sent to (name, address or "
        "CIDR, repeatable): the same rule as a pipeline's allow_hosts:."
    ),
]


def tls_of_flags(
    url: str, cacert: str | None, insecure: bool, cert: str | None, key: str | None
) -> TlsSettings | None:
    """The settings of the flags for `url`, checked before any traffic (None: http://)."""
    from heisen.system import tls_from_flags

    https = urlsplit(url).scheme == "https"
    return tls_from_flags(url, https=https, cacert=cacert, insecure=insecure, cert=cert, key=key)
