"""Probe adapters: run one probe, return the variables its ``expect:`` is evaluated over.

Each adapter imports its driver inside the function (``heisen --help`` never
loads psycopg, redis or httpx) and translates the driver's errors into
:class:`ProbeError`, saying what failed and where.

============  ==============================================================
probe         variables
============  ==============================================================
sql           first row's columns, ``rows`` (list of dicts), ``rowcount``
redis         ``value`` (bytes decoded to str, then int when it is one)
http          ``status``, ``body`` (parsed JSON, else text), ``headers``
python        the function's mapping result, else ``{"value": result}``
============  ==============================================================

Inside ``with reusing_connections():`` (the trial engine runs its trials in
one) sql and redis probes keep one connection per DSN or URL and reuse it,
instead of connecting for every call; leaving the block closes them. Outside
it, every call connects and closes. An https probe's TLS context is built once.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from heisen.errors import EXIT_ENVIRONMENT, EXIT_USAGE, SystemUnavailable

__all__ = [
    "ProbeError",
    "check_python_ref",
    "http_probe",
    "python_probe",
    "redis_probe",
    "reusing_connections",
    "run_setup_redis",
    "run_setup_sql",
    "sql_probe",
]

CONNECT_TIMEOUT_S = 5

if TYPE_CHECKING:
    import psycopg
    import redis

    from heisen.system import TlsSettings


@dataclass
class _Kept:
    """The connections a `reusing_connections()` block keeps, by DSN or URL."""

    sql: dict[str, psycopg.Connection[Any]] = field(default_factory=dict)
    redis: dict[str, redis.Redis] = field(default_factory=dict)

    def close(self) -> None:
        closers = [c.close for c in self.sql.values()] + [c.close for c in self.redis.values()]
        for close in closers:
            with contextlib.suppress(Exception):
                close()


# The connections kept by the innermost `reusing_connections()` block of this thread (None: none).
_kept: ContextVar[_Kept | None] = ContextVar("heisen_probe_connections", default=None)


@contextlib.contextmanager
def reusing_connections() -> Iterator[None]:
    """Keep sql and redis probe connections open for reuse until the block ends, then close them.

    A connection is per thread (a context variable): a thread that did not enter
    the block connects per call. A kept PostgreSQL connection found broken is
    replaced by a new one; a failure on a new one is reported as before.
    """
    kept = _Kept()
    token = _kept.set(kept)
    try:
        yield
    finally:
        _kept.reset(token)
        kept.close()


class ProbeError(SystemUnavailable):
    """A probe could not run: the dependency is down, the query is wrong, the function raised.

    `fault` says who must act: "pipeline" when the probe itself is wrong (SQL
    syntax, an undefined table or column, a Redis command the server refuses),
    "environment" when what it asks is gone (connection refused, timeout).
    """

    def __init__(
        self,
        message: str,
        *,
        probe: str | None = None,
        where: str | None = None,
        fault: str = "environment",
    ) -> None:
        self.probe = probe
        self.where = where
        self.message = message
        self.fault = fault
        self.exit_code = EXIT_USAGE if fault == "pipeline" else EXIT_ENVIRONMENT
        prefix = f"{probe} probe" if probe else ""
        if where:
            prefix = f"{prefix} on {where}" if prefix else where
        super().__init__(f"{prefix}: {message}" if prefix else message)


def _redact(dsn: str) -> str:
    """Hide a password in a URL-style or key=value DSN."""
    if "://" in dsn and "@" in dsn:
        scheme, rest = dsn.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else dsn
    parts = [("password=***" if part.startswith("password=") else part) for part in dsn.split()]
    return " ".join(parts)


def _plain(value: Any) -> Any:
    """Database values as plain Python: Decimal → int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# ---------------------------------------------------------------- SQL


def sql_probe(
    dsn: str, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Run ``query`` (with optional ``params``); first row's columns, ``rows``, ``rowcount``."""
    import psycopg
    from psycopg.rows import dict_row

    def connect() -> Any:
        return psycopg.connect(
            dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, row_factory=dict_row
        )

    kept = _kept.get()
    try:
        if kept is None:
            with connect() as connection:
                rows, count = _query(connection, query, params)
        else:
            rows, count = _query_kept(kept.sql, dsn, connect, query, params)
    except psycopg.Error as exc:
        raise ProbeError(
            probe="sql", where=_redact(dsn), message=_first_line(exc), fault=_sql_fault(exc)
        ) from exc
    variables: dict[str, Any] = dict(rows[0]) if rows else {}
    variables["rows"] = rows
    variables["rowcount"] = count if count >= 0 else len(rows)
    return variables


def _query(
    connection: Any, query: str, params: Sequence[Any] | Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], int]:
    cursor = connection.execute(query.encode(), params)
    rows = [
        {name: _plain(value) for name, value in row.items()}
        for row in (cursor.fetchall() if cursor.description else [])
    ]
    return rows, cursor.rowcount


def _query_kept(
    kept: dict[str, psycopg.Connection[Any]],
    key: str,
    connect: Callable[[], Any],
    query: str,
    params: Sequence[Any] | Mapping[str, Any] | None,
) -> tuple[list[dict[str, Any]], int]:
    """`_query` on the connection kept under `key`; one lost since its last use is replaced once."""
    import psycopg

    connection = kept.pop(key, None)
    if connection is not None and (connection.closed or connection.broken):
        connection.close()
    elif connection is not None:
        try:
            result = _query(connection, query, params)
        except psycopg.OperationalError:
            if not connection.broken:  # the server refused the statement: the connection is fine
                kept[key] = connection
                raise
            connection.close()
        except BaseException:
            kept[key] = connection  # a wrong statement leaves an autocommit connection usable
            raise
        else:
            kept[key] = connection
            return result
    kept[key] = connection = connect()
    return _query(connection, query, params)


def run_setup_sql(dsn: str, sql: str) -> None:
    """Run setup statements (several, separated by ``;``) in autocommit mode."""
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as connection:
            connection.execute(sql.encode())
    except psycopg.Error as exc:
        raise ProbeError(
            probe="sql setup", where=_redact(dsn), message=_first_line(exc), fault=_sql_fault(exc)
        ) from exc


# SQLSTATE classes that mean the statement is wrong, not the server: 42 syntax error or access
# rule violation (undefined table/column/function), 22 data exception, 0A feature not supported.
_STATEMENT_CLASSES = ("42", "22", "0A")


def _sql_fault(exc: Exception) -> str:
    state = getattr(exc, "sqlstate", None) or ""
    return "pipeline" if state[:2] in _STATEMENT_CLASSES else "environment"


# ---------------------------------------------------------------- Redis


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, str):
        text = value.strip()
        if text and (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
            return int(text)
        return value
    if isinstance(value, list | tuple):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        return {_decode(k): _decode(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted((_decode(item) for item in value), key=repr)
    return value


def _redis_call(url: str, command: Sequence[str], what: str) -> Any:
    import redis

    if not command:
        raise ProbeError(probe=what, where=_redact(url), message="the command is empty")
    kept = _kept.get()
    client = kept.redis.get(url) if kept is not None else None
    if client is None:
        client = redis.Redis.from_url(
            url, socket_timeout=CONNECT_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S
        )
        if kept is not None:
            kept.redis[url] = client  # its pool reconnects a dropped connection by itself
    try:
        return cast(Any, client).execute_command(*command)
    except redis.RedisError as exc:
        # The server answered with an error (unknown command, wrong type): the command is wrong.
        fault = "pipeline" if isinstance(exc, redis.ResponseError) else "environment"
        raise ProbeError(
            probe=what, where=_redact(url), message=f"{' '.join(command)}: {exc}", fault=fault
        ) from exc
    finally:
        if kept is None:
            client.close()


def redis_probe(url: str, command: list[str]) -> dict[str, Any]:
    """Run one command (``["GET", "sold"]``); its reply is ``value``."""
    return {"value": _decode(_redis_call(url, command, "redis"))}


def run_setup_redis(url: str, command: list[str]) -> None:
    _redis_call(url, command, "redis setup")


# ---------------------------------------------------------------- HTTP


def http_probe(
    base_url: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 5,
    tls: TlsSettings | None = None,
) -> dict[str, Any]:
    """Send one request; ``status``, ``body`` (JSON when it parses) and ``headers`` (lower-case).

    `tls`: the pipeline's TLS settings for an https service (its CA, client certificate,
    insecure:, server_name:); a failed TLS handshake is SystemUnavailable, naming why."""
    import httpx

    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    verify = tls.context() if tls is not None else _tls_context()
    sni = {"sni_hostname": tls.server_name} if tls is not None and tls.server_name else None
    try:
        with httpx.Client(timeout=timeout_s, verify=verify) as client:
            response = client.request(
                method.upper(), url, json=json_body, headers=dict(headers or {}), extensions=sni
            )
    except httpx.HTTPError as exc:
        _raise_tls_failure(url, exc)
        raise ProbeError(
            probe="http", where=f"{method.upper()} {url}", message=f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {
        "status": response.status_code,
        "body": body,
        "headers": {name.lower(): value for name, value in response.headers.items()},
    }


def _raise_tls_failure(url: str, exc: BaseException) -> None:
    """SystemUnavailable when `exc` is a failed TLS handshake: the environment, not a finding."""
    from urllib.parse import urlsplit

    from heisen.system import tls_failure_message

    parts = urlsplit(url)
    message = tls_failure_message(f"{parts.hostname}:{parts.port or 443}", exc)
    if message is not None:
        raise SystemUnavailable(message) from exc


@functools.cache
def _tls_context() -> Any:
    """httpx's default TLS context, built once: building it reads the CA bundle (~20-90 ms)."""
    import httpx

    return httpx.create_ssl_context()


# ---------------------------------------------------------------- Python


def check_python_ref(
    ref: str, allowed_kwargs: Iterable[str], base_dir: Path | None = None
) -> str | None:
    """Why ``ref`` cannot serve as a python probe given ``allowed_kwargs``; None when it can.

    Static: nothing is imported (see :mod:`heisen.oracle._python_ref`).
    """
    from heisen.oracle._python_ref import check_python_ref as check

    return check(ref, allowed_kwargs, base_dir)


def python_probe(
    ref: str,
    context: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Call ``module:function`` in a child process with the keyword arguments it accepts.

    ``base_dir`` (the pipeline's directory) is searched first for the module;
    the call may take ``timeout_s`` (default 10 s). Any failure of the probe
    (raised, exited, crashed, timed out, returned what is not plain data) is
    a :class:`ProbeError` naming it; see :mod:`heisen.oracle._python_runner`.
    """
    from heisen.oracle._python_runner import run_python_probe

    return run_python_probe(ref, context, base_dir=base_dir, timeout_s=timeout_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
