"""Reproduce a fuzz failure with one shell command.

`replay_command` writes the command a finding carries: it resends the case
and exits 1 while the service still fails, 0 once it is fixed, 3 when the
service cannot be reached (2 for a wrong command line). It can go in a CI
job or a `git bisect run`. `curl_command` is the same request for a human.

Run as a module it is that replayer, on the standard library alone:

    python -m heisen.fuzz._replay --url http://127.0.0.1:8080/events/1/checkout \\
        --method POST --body-file CASE.json --fail-on 5xx

An https:// URL is sent over TLS, verified against `--cacert` (else the
system's CA store) unless `--insecure`, with `--cert`/`--key` for a server
that asks for a client certificate and `--server-name` for a certificate
issued for another name than the URL's host.

`--fail-on` takes a comma-separated list of what counts as still failing:
`5xx`/`4xx` (a status class), `500` (a status), `500-503` (a range),
`timeout` (no answer within `--timeout`), `reset` (the connection was closed
without an answer: the server crashed), `nonconforming` (the response breaks
the OpenAPI document given with `--openapi` and `--operation`).
"""

from __future__ import annotations

import argparse
import http.client
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from heisen.fuzz._values import encode_payload, encode_text

if TYPE_CHECKING:
    import ssl

    from heisen.system import TlsSettings

EXIT_FIXED = 0
EXIT_STILL_FAILING = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
MAX_INLINE_BODY = 4096
_TOKENS = ("timeout", "reset", "nonconforming")


def render_path(template: str, path_params: Mapping[str, Any]) -> str:
    """`/events/{event_id}/checkout` with each parameter percent-encoded in place."""
    path = template
    for name, value in path_params.items():
        text = value if isinstance(value, str) else encode_text(value)
        path = path.replace("{" + name + "}", quote(text.encode("utf-8", "surrogatepass"), safe=""))
    return path


def render_query(query: Mapping[str, Any]) -> str:
    """The query string (without `?`) for scalar parameter values."""
    pairs = [
        (name, value if isinstance(value, str) else encode_text(value))
        for name, value in query.items()
    ]
    return urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in pairs])


def full_url(base_url: str, path: str, query: Mapping[str, Any] | None = None) -> str:
    url = base_url.rstrip("/") + (path if path.startswith("/") else "/" + path)
    return f"{url}?{render_query(query)}" if query else url


def write_body_file(path: Path, payload: Any) -> Path:
    """Write the payload exactly as it goes on the wire, for `--body-file`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_payload(payload))
    return path


def replay_command(
    base_url: str,
    method: str,
    path: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    expect: str = "5xx",
    *,
    query: Mapping[str, Any] | None = None,
    body_file: Path | None = None,
    openapi: Path | None = None,
    operation: str | None = None,
    python: str | None = None,
) -> str:
    """A shell command that resends the case and exits 1 while it still fails.

    `path` is concrete (see `render_path`); `expect` is a `--fail-on` list. The
    body goes inline up to 4 KiB, otherwise into `body_file` (written here).
    """
    parse_fail_on(expect)
    words = [python or sys.executable, "-m", "heisen.fuzz._replay"]
    words += ["--url", full_url(base_url, path, query), "--method", method.upper()]
    words += _body_words(payload, body_file, "--body", "--body-file")
    for name, value in (headers or {}).items():
        words += ["--header", f"{name}: {value}"]
    words += ["--fail-on", expect]
    if openapi is not None and operation is not None:
        words += ["--openapi", str(openapi), "--operation", operation]
    return shlex.join(words)


def curl_command(
    base_url: str,
    method: str,
    path: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    *,
    query: Mapping[str, Any] | None = None,
    body_file: Path | None = None,
    write: bool = True,
    tls: TlsSettings | None = None,
) -> str:
    """The same request as `curl`, for a human to read and paste (`write=False`: the caller
    has written `body_file` already, and it may be relative to the run dir); `tls`: the
    service's TLS settings, as curl's `--cacert`, `-k`, `--cert`, `--key`."""
    words = ["curl", "-sS", "-i", *tls_words(tls, curl=True)]
    words += ["-X", method.upper(), full_url(base_url, path, query)]
    merged = {"Content-Type": "application/json", **(headers or {})}
    for name, value in merged.items():
        words += ["-H", f"{name}: {value}"]
    if body_file is not None and not write:
        return shlex.join([*words, "--data-binary", f"@{body_file}"])
    body = _body_words(payload, body_file, "--data-binary", "--data-binary")
    if body and body[0] == "--data-binary" and body_file is not None:
        body[1] = "@" + body[1]
    return shlex.join(words + body)


def tls_words(tls: TlsSettings | None, *, curl: bool = False) -> list[str]:
    """The options that speak TLS as `tls` says: curl's, or (`curl=False`) this replayer's,
    which also takes `--server-name` (curl has no flag for it alone)."""
    if tls is None:
        return []
    words = [("-k" if curl else "--insecure")] if tls.insecure else []
    if tls.ca is not None and not tls.insecure:
        words += ["--cacert", str(tls.ca)]
    if tls.cert is not None:
        words += ["--cert", str(tls.cert)]
    if tls.key is not None:
        words += ["--key", str(tls.key)]
    if tls.server_name is not None and not curl:
        words += ["--server-name", tls.server_name]
    return words


def _body_words(payload: Any, body_file: Path | None, inline: str, from_file: str) -> list[str]:
    body = encode_payload(payload)
    if len(body) <= MAX_INLINE_BODY and body_file is None:
        return [inline, body.decode("utf-8")]
    if body_file is None:
        raise ValueError(f"a {len(body)}-byte body does not fit on a command line: pass body_file")
    write_body_file(body_file, payload)
    return [from_file, str(body_file)]


@dataclass(frozen=True)
class FailOn:
    ranges: tuple[tuple[int, int], ...]
    timeout: bool = False
    reset: bool = False
    nonconforming: bool = False

    def matches_status(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.ranges)


def parse_fail_on(spec: str) -> FailOn:
    """`5xx,413,timeout` → FailOn; ValueError naming the bad item."""
    ranges: list[tuple[int, int]] = []
    flags = dict.fromkeys(_TOKENS, False)
    for raw in spec.split(","):
        item = raw.strip().lower()
        if item in flags:
            flags[item] = True
        elif len(item) == 3 and item[0] in "12345" and item[1:] == "xx":
            ranges.append((int(item[0]) * 100, int(item[0]) * 100 + 99))
        elif item.isdigit() and 100 <= int(item) <= 599:
            ranges.append((int(item), int(item)))
        elif "-" in item and all(p.isdigit() for p in item.split("-", 1)):
            low, high = (int(p) for p in item.split("-", 1))
            if not 100 <= low <= high <= 599:
                raise ValueError(f"bad status range {raw!r} in --fail-on")
            ranges.append((low, high))
        else:
            raise ValueError(
                f"{raw!r} in --fail-on is not a status (500), a class (5xx), a range (500-503) or one of {', '.join(_TOKENS)}"
            )
    return FailOn(tuple(ranges), **flags)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m heisen.fuzz._replay",
        description="Resend a fuzz case: exit 1 while it still fails, 0 when fixed, 3 when unreachable.",
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="POST")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--body", help="the request body, as JSON text")
    group.add_argument("--body-file", type=Path, help="a file holding the request body")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--fail-on", default="5xx")
    parser.add_argument("--openapi", type=Path)
    parser.add_argument("--operation")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--cacert", type=Path, help="https: the CA that signed the server")
    parser.add_argument("--insecure", action="store_true", help="https: do not verify")
    parser.add_argument("--cert", type=Path, help="https: a client certificate (PEM)")
    parser.add_argument("--key", type=Path, help="https: the private key of --cert")
    parser.add_argument("--server-name", help="https: the name the certificate was issued for")
    args = parser.parse_args(argv)
    try:
        fail_on = parse_fail_on(args.fail_on)
    except ValueError as exc:
        parser.error(str(exc))
    if fail_on.nonconforming and (args.openapi is None or args.operation is None):
        parser.error("--fail-on nonconforming needs --openapi and --operation")
    headers: dict[str, str] = {}
    for raw in args.header:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            parser.error(f"--header {raw!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    body: bytes | None = None
    if args.body_file is not None:
        try:
            body = args.body_file.read_bytes()
        except OSError as exc:
            parser.error(f"cannot read --body-file: {exc}")
    elif args.body is not None:
        body = args.body.encode("utf-8", "surrogatepass")
    if body is not None and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        parser.error(f"--url {args.url!r} is not an http(s) URL")
    return _replay(args, url, headers, body, fail_on)


def _replay(
    args: argparse.Namespace, url: Any, headers: dict[str, str], body: bytes | None, fail_on: FailOn
) -> int:
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        connection = _HttpsConnection(
            url.hostname, url.port, timeout=args.timeout, context=_context(args)
        )
        connection.server_name = args.server_name
    else:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    try:
        try:
            connection.connect()
        except OSError as exc:
            return _say(EXIT_UNREACHABLE, f"unreachable: {args.url} ({exc})")
        try:
            connection.request(args.method.upper(), target, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError:
            if fail_on.timeout:
                return _say(
                    EXIT_STILL_FAILING, f"still failing: no answer within {args.timeout:g}s"
                )
            return _say(EXIT_UNREACHABLE, f"unreachable: no answer within {args.timeout:g}s")
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            if fail_on.reset:
                return _say(
                    EXIT_STILL_FAILING,
                    f"still failing: connection closed without an answer ({exc})",
                )
            return _say(
                EXIT_UNREACHABLE, f"unreachable: connection closed without an answer ({exc})"
            )
    finally:
        connection.close()
    status = response.status
    if fail_on.matches_status(status):
        return _say(
            EXIT_STILL_FAILING,
            f"still failing: {status} {response.reason} (--fail-on {args.fail_on})",
        )
    if fail_on.nonconforming:
        problems = _conformance(
            args.openapi, args.operation, status, dict(response.getheaders()), data
        )
        if problems:
            return _say(
                EXIT_STILL_FAILING,
                "still failing: the response does not conform:\n  " + "\n  ".join(problems),
            )
    return _say(EXIT_FIXED, f"passes: {status} {response.reason}")


class _HttpsConnection(http.client.HTTPSConnection):
    """An HTTPS connection that checks (and sends in SNI) `server_name` when set, not the host."""

    server_name: str | None = None

    def connect(self) -> None:
        if self.server_name is None:
            super().connect()
            return
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self.server_name
        )


def _context(args: argparse.Namespace) -> ssl.SSLContext:
    import ssl

    try:
        context = ssl.create_default_context(
            cafile=str(args.cacert) if args.cacert is not None else None
        )
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if args.cert is not None:
            context.load_cert_chain(str(args.cert), str(args.key) if args.key else None)
    except (OSError, ssl.SSLError) as exc:
        sys.stderr.write(f"cannot load the TLS files: {exc}\n")
        raise SystemExit(EXIT_USAGE) from exc
    context.set_alpn_protocols(["http/1.1"])
    return context


def _conformance(
    openapi: Path, operation: str, status: int, headers: dict[str, str], data: bytes
) -> list[str]:
    from heisen.errors import UsageError
    from heisen.fuzz._conformance import check_response
    from heisen.fuzz._openapi import find_operation, load_openapi

    try:
        found = find_operation(load_openapi(openapi), operation)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(EXIT_USAGE) from exc
    return check_response(found, status, headers, data)


def _say(code: int, message: str) -> int:
    sys.stderr.write(message + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
