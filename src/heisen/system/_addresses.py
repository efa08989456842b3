"""Addresses of what runs: parse and rewrite DSNs and URLs, refuse hosts nobody allowed."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from heisen.errors import UsageError

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise UsageError(f"{url!r} names no host")
    return parts.hostname, parts.port or default_port


def with_host_port(url: str, host: str, port: int) -> str:
    """The same DSN or URL pointed at host:port, user and password kept."""
    parts = urlsplit(url)
    credentials = ""
    if parts.username is not None:
        credentials = parts.username
        if parts.password is not None:
            credentials += f":{parts.password}"
        credentials += "@"
    return urlunsplit(
        (parts.scheme, f"{credentials}{host}:{port}", parts.path, parts.query, parts.fragment)
    )


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


def check_allowed(host: str, allow_hosts: list[str], where: str) -> None:
    if is_loopback(host) or host in allow_hosts:
        return
    raise UsageError(
        f"{where}: {host!r} is not a loopback address and is not listed under allow_hosts:; "
        "heisen sends traffic only where you allow it"
    )
