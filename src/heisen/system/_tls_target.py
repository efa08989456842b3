"""How heisen speaks TLS to a service or an HTTP dependency: the pipeline's `tls:`, resolved.

`TlsSettings` is what a pipeline's `tls:` (or the ad hoc `--cacert`,
`--insecure`, `--cert`, `--key` flags) says, with paths made absolute: plain
data, so it crosses into load worker processes. `context(alpn)` builds the
client SSL context once per settings and ALPN offer (loading a CA file and a
key pair costs milliseconds; the load opens thousands of connections), so
every caller of the same settings shares one context object.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from heisen.errors import UsageError

if TYPE_CHECKING:
    from heisen.schema import Pipeline, Tls


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Verify against `ca` (else the system's store) unless `insecure`; `cert`/`key` for a
    server that asks for a client certificate; `server_name` is the name the server's
    certificate must carry (and SNI sends) instead of the URL's host."""

    ca: Path | None = None
    insecure: bool = False
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    @classmethod
    def of(cls, tls: Tls | None, base_dir: Path) -> TlsSettings:
        """The settings of a pipeline's `tls:` (None: an https:// URL with the defaults)."""
        if tls is None:
            return cls()

        def path(relative: str | None) -> Path | None:
            return (base_dir / relative).resolve() if relative is not None else None

        return cls(path(tls.ca), tls.insecure, path(tls.cert), path(tls.key), tls.server_name)

    def context(self, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
        """The client context offering `alpn`, built once (UsageError naming a bad file)."""
        return _context(self, alpn)

    def health_context(self) -> ssl.SSLContext:
        """For readiness probes of replicas heisen starts: the client certificate, no
        verification (a replica is asked for /health, not trusted; the load verifies)."""
        return replace(self, ca=None, insecure=True).context()


@functools.lru_cache(maxsize=64)
def _context(settings: TlsSettings, alpn: tuple[str, ...]) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ca) if settings.ca is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"tls: cannot load the CA file {settings.ca}: {_reason(exc)}") from exc
    if settings.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.cert is not None:
        try:
            context.load_cert_chain(str(settings.cert), _text(settings.key))
        except (OSError, ssl.SSLError) as exc:
            pair = f"{settings.cert}" + (f" with key {settings.key}" if settings.key else "")
            raise UsageError(
                f"tls: cannot load the client certificate {pair}: {_reason(exc)}"
            ) from exc
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


_KEYS = {
    "ca": "tls: {ca: ...}",
    "server_name": "tls: {server_name: ...}",
    "insecure": "tls: {insecure: true}",
    "cert": "tls: {cert: ..., key: ...}",
}
_FLAGS = {
    "ca": "--cacert",
    "server_name": "a URL with that name",
    "insecure": "--insecure",
    "cert": "--cert and --key",
}


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return str(exc)


def service_tls(pipeline: Pipeline, name: str | None, base_dir: Path) -> TlsSettings | None:
    """How heisen speaks TLS to service `name` (None: the first), or None for plain HTTP."""
    service = (
        pipeline.services[name] if name is not None else next(iter(pipeline.services.values()))
    )
    if not service.speaks_tls:
        return None
    return TlsSettings.of(service.tls, base_dir)


def tls_failure_message(where: str, exc: BaseException, *, flags: bool = False) -> str | None:
    """What went wrong in a TLS handshake with `where` (host:port), or None when `exc` (or what
    it was raised from) is not a TLS error; the advice names the pipeline's `tls:` keys, or
    with `flags` the ad hoc command line's."""
    said = _FLAGS if flags else _KEYS
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ssl.SSLError):
        seen = seen.__cause__ or seen.__context__
    if isinstance(seen, ssl.SSLCertVerificationError):
        return (
            f"TLS handshake with {where} failed: certificate verify failed: "
            f"{str(seen.verify_message).rstrip('.')}; give the CA that signed the server's "
            f"certificate ({said['ca']}), the name it was issued for ({said['server_name']}), "
            f"or skip verification ({said['insecure']})"
        )
    if isinstance(seen, ssl.SSLError):
        reason = seen.reason or str(seen)
        hint = "; does the server speak TLS on that port?" if "WRONG_VERSION" in reason else ""
        if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
            hint = f"; does the server require a client certificate ({said['cert']})?"
        return f"TLS handshake with {where} failed: {reason}{hint}"
    return None


def tls_from_flags(
    url: str,
    *,
    https: bool,
    cacert: str | None = None,
    insecure: bool = False,
    cert: str | None = None,
    key: str | None = None,
) -> TlsSettings | None:
    """The TLS settings of the ad hoc `--cacert`, `--insecure`, `--cert`, `--key` flags,
    checked (the files exist and load) before any traffic; None for an http:// `url`."""
    given = [
        flag
        for flag, value in (
            ("--cacert", cacert),
            ("--insecure", insecure),
            ("--cert", cert),
            ("--key", key),
        )
        if value
    ]
    if not https:
        if given:
            raise UsageError(
                f"{', '.join(given)}: TLS options go with an https:// URL, "
                f"and --url {url!r} is http://"
            )
        return None
    if cacert and insecure:
        raise UsageError("--insecure skips the check --cacert is for: give one of them")
    if key and not cert:
        raise UsageError("--key is the private key of --cert: give --cert too")
    for flag, value in (("--cacert", cacert), ("--cert", cert), ("--key", key)):
        if value and not Path(value).is_file():
            raise UsageError(f"{flag} {value}: no such file")

    def path(value: str | None) -> Path | None:
        return Path(value).resolve() if value else None

    settings = TlsSettings(path(cacert), insecure, path(cert), path(key))
    settings.context()  # a file that is not a certificate or a key: UsageError, now
    return settings
