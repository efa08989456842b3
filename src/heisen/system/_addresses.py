"""Addresses of what runs: parse and rewrite DSNs and URLs, refuse hosts nobody allowed.

The loopback rule, stated once: heisen sends traffic to a host only when
every address that host resolves to is loopback (127.0.0.0/8, ::1, or either
mapped into IPv6 as ``::ffff:127.x.y.z``), or when the pipeline lists the
host under ``allow_hosts:``. Addresses are parsed, never matched as strings:
``127.0.0.1.example.com`` is a DNS name like any other and is resolved.

How each form is read, by the parser its client uses:

- PostgreSQL (``postgres://``, ``postgresql://`` or key/value ``host=... port=...``):
  libpq's own parser (``psycopg.conninfo.conninfo_to_dict``), so ``?host=``
  and ``hostaddr=`` parameters, comma-separated host lists and quoted
  values are seen as libpq sees them. Per position, ``hostaddr`` (numeric)
  is what libpq connects to, else ``host``. A host that starts with ``/``
  (or ``@``, Linux's abstract namespace) is a Unix-socket directory: local,
  allowed. No host at all means libpq's default, a Unix socket, unless
  ``PGHOST``/``PGHOSTADDR`` in the environment say otherwise (they are
  checked). ``service=`` (and ``PGSERVICE``) is refused: the host it names
  lives in a ``pg_service.conf`` heisen does not read.
- Redis (``redis://``, ``rediss://``, ``unix://``): the URL's host and also a
  ``?host=`` query parameter, which redis-py applies when the URL names no
  host (``redis:///0?host=10.0.0.1`` connects to 10.0.0.1). No host means
  redis-py's default, ``localhost``. ``unix://`` is a socket path: local.
- HTTP and anything else with ``scheme://``: the URL's host. A host with
  characters outside ``[A-Za-z0-9._-]`` (a backslash, ``%``, spaces) is
  refused rather than guessed at, because URL parsers disagree on them.

Names are resolved with ``getaddrinfo`` (``localhost`` through
``/etc/hosts``, like every client on the machine); a name that does not
resolve is refused. ``allow_hosts:`` entries match a host name
case-insensitively (a trailing dot ignored), an IP address by value, or a
network written as a CIDR (``10.0.0.0/8``) by the literal address in it.

What this does not close: a DNS name that resolves to loopback now can
resolve elsewhere later (DNS rebinding). Use an address, or ``localhost``,
for anything heisen starts against.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Collection, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from heisen.errors import UsageError

POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_PLAIN_HOST = re.compile(r"[A-Za-z0-9._-]+")
_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_IPV6_LOOPBACK = ipaddress.ip_address("::1")
_ALLOW_HINT = "heisen sends traffic only to loopback or to hosts listed under allow_hosts:"
_LIST_IT = "list it under allow_hosts: to send traffic there"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# ----------------------------------------------------------------- the rule


def loopback_problems(url_or_dsn: str, allow_hosts: Collection[str]) -> list[str]:
    """Why `url_or_dsn` may not be reached (one message per host), or [] when it may.

    `url_or_dsn` is a PostgreSQL DSN (URL or key/value), a Redis URL, an
    HTTP URL, or a bare host name or address.
    """
    try:
        targets = list(_targets(url_or_dsn))
    except _Unparsable as error:
        return [str(error)]
    problems: list[str] = []
    for host, origin in targets:
        problems += host_problems(host, allow_hosts, origin)
    return problems


def host_problems(host: str, allow_hosts: Collection[str], origin: str = "") -> list[str]:
    """Why `host` (a name or address, IPv6 with or without brackets) is refused, or [].

    `origin` (" (from …)") is put after the host in the message.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if _listed(bare, allow_hosts):
        return []
    named = f"host {host!r}{origin}"
    literal = _ip(bare)
    if literal is not None:
        if is_loopback_address(literal):
            return []
        return [f"{named} is not a loopback address; {_LIST_IT}"]
    if not _PLAIN_HOST.fullmatch(bare):
        return [f"{named} is not a loopback address: it is not a plain host name or address"]
    try:
        infos = socket.getaddrinfo(bare, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [f"{named} is not a loopback address: it does not resolve ({reason})"]
    addresses = sorted({str(info[4][0]) for info in infos})
    outside = [a for a in addresses if not is_loopback_address(a)]
    if outside or not addresses:
        resolved = ", ".join(outside) or "nothing"
        return [f"{named} is not a loopback address: it resolves to {resolved}; {_LIST_IT}"]
    return []


def is_loopback_address(address: str | Address) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything not an address."""
    ip = _ip(address) if isinstance(address, str) else address
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped in _LOOPBACK_V4
        return ip == _IPV6_LOOPBACK
    return ip in _LOOPBACK_V4


def check_address(url_or_dsn: str, allow_hosts: Collection[str], where: str) -> None:
    """UsageError naming `where` and every refused host of `url_or_dsn`."""
    problems = loopback_problems(url_or_dsn, allow_hosts)
    if problems:
        raise UsageError(f"{where}: " + "; ".join(problems) + f" ({_ALLOW_HINT})")


def check_allowed(host: str, allow_hosts: Collection[str], where: str) -> None:
    """UsageError unless `host` (a bare name or address) may be reached."""
    problems = host_problems(host, allow_hosts)
    if problems:
        raise UsageError(f"{where}: " + "; ".join(problems) + f" ({_ALLOW_HINT})")


def _listed(host: str, allow_hosts: Collection[str]) -> bool:
    name = host.lower().rstrip(".")
    literal = _ip(host)
    for entry in allow_hosts:
        allowed = entry.strip().lower().rstrip(".")
        if allowed.startswith("[") and allowed.endswith("]"):
            allowed = allowed[1:-1]
        if allowed == name:
            return True
        if literal is None:
            continue
        if "/" in allowed:
            try:
                if literal in ipaddress.ip_network(allowed, strict=False):
                    return True
            except ValueError:
                continue
        elif _ip(allowed) == literal:
            return True
    return False


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0] if ":" in text else text)
    except ValueError:
        return None


# ----------------------------------------------------------------- which hosts a string names


class _Unparsable(Exception):
    pass


def _targets(text: str) -> Iterator[tuple[str, str]]:
    """(host, " (from …)" note) for every host a client of `text` may connect to."""
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in POSTGRES_SCHEMES or (not scheme and "=" in text):
        yield from _postgres_targets(text)
    elif scheme in REDIS_SCHEMES:
        yield from _redis_targets(text, scheme)
    elif scheme:
        yield from _url_targets(text)
    else:
        host = text.strip()
        if not host:
            raise _Unparsable("an empty address names no host")
        yield host, ""


def _split(text: str) -> Any:
    authority = re.split(r"[/?#]", text.split("://", 1)[1], maxsplit=1)[0]
    if any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in authority):
        raise _Unparsable(
            "the URL's host part holds a space, a control character or a backslash; "
            "URL parsers disagree on those, so heisen refuses it"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise _Unparsable(f"not a valid URL: {exc}") from None
    return parts


def _url_targets(text: str) -> Iterator[tuple[str, str]]:
    parts = _split(text)
    if not parts.hostname:
        raise _Unparsable(f"a {parts.scheme}:// URL without a host")
    yield parts.hostname, ""


def _redis_targets(text: str, scheme: str) -> Iterator[tuple[str, str]]:
    parts = _split(text)
    if scheme == "unix":
        return  # a socket path on this machine
    named = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "host" and v]
    if parts.hostname:
        yield parts.hostname, ""
    for host in named:
        yield host, " (from ?host= in the URL)"
    if not parts.hostname and not named:
        yield "localhost", " (the Redis client's default host)"


def _postgres_targets(text: str) -> Iterator[tuple[str, str]]:
    params = conninfo(text)
    if params.get("service") or (not _names_host(params) and os.environ.get("PGSERVICE")):
        raise _Unparsable(
            "service= takes its host from pg_service.conf, which heisen does not read; "
            "write host= (and port=) instead"
        )
    origin = " (from the DSN)"
    if not _names_host(params):
        params = {k: os.environ.get(f"PG{k.upper()}", "") for k in ("host", "hostaddr")}
        origin = " (from PGHOST/PGHOSTADDR in the environment)"
    hosts = params.get("host", "").split(",")
    addrs = params.get("hostaddr", "").split(",")
    for index in range(max(len(hosts), len(addrs))):
        addr = addrs[index].strip() if index < len(addrs) else ""
        host = hosts[index].strip() if index < len(hosts) else ""
        if addr:
            yield addr, origin.replace("the DSN", "hostaddr= in the DSN")
        elif host and not host.startswith(("/", "@")):
            yield host, origin


def _names_host(params: dict[str, str]) -> bool:
    return bool(params.get("host") or params.get("hostaddr"))


def conninfo(dsn: str) -> dict[str, str]:
    """libpq's reading of a PostgreSQL DSN (URL or key/value); _Unparsable if libpq refuses it."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except ProgrammingError as exc:
        from heisen._redact import redact_text

        raise _Unparsable(f"not a valid PostgreSQL DSN: {redact_text(str(exc))}") from None
    return {k: str(v) for k, v in params.items() if v is not None}


# ----------------------------------------------------------------- rewriting for link proxies


def _is_postgres(url: str) -> bool:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme in POSTGRES_SCHEMES or (not scheme and "=" in url)


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """The TCP host and port a client of `url` connects to first."""
    if _is_postgres(url):
        try:
            params = conninfo(url)
        except _Unparsable as error:
            raise UsageError(str(error)) from None
        host = params.get("hostaddr", "").split(",")[0] or params.get("host", "").split(",")[0]
        if not host or host.startswith(("/", "@")):
            raise UsageError(
                "a Unix-socket PostgreSQL DSN cannot go through heisen's link proxies; "
                "give host=127.0.0.1 and port="
            )
        port_text = params.get("port", "").split(",")[0]
        if port_text and not port_text.isdigit():
            raise UsageError(f"port {port_text!r} of the DSN is not a number")
        return host, int(port_text) if port_text else default_port
    parts = urlsplit(url)
    if not parts.hostname:
        raise UsageError(f"{url!r} names no host")
    return parts.hostname, parts.port or default_port


def with_host_port(url: str, host: str, port: int) -> str:
    """The same DSN or URL pointed at host:port, user, password and options kept."""
    if _is_postgres(url) and "://" not in url:
        from psycopg.conninfo import make_conninfo

        params: dict[str, Any] = dict(conninfo(url))
        params.pop("hostaddr", None)
        return make_conninfo("", **{**params, "host": host, "port": str(port)})
    parts = urlsplit(url)
    query = parts.query
    if _is_postgres(url):
        kept = [
            (k, v)
            for k, v in parse_qsl(query, keep_blank_values=True)
            if k not in ("host", "hostaddr", "port")
        ]
        query = urlencode(kept)
    credentials = ""
    if parts.username is not None:
        credentials = parts.username
        if parts.password is not None:
            credentials += f":{parts.password}"
        credentials += "@"
    netloc_host = f"[{host}]" if ":" in host else host
    return urlunsplit(
        (parts.scheme, f"{credentials}{netloc_host}:{port}", parts.path, query, parts.fragment)
    )
