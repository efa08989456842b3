"""Ad hoc load without a pipeline, like hey or vegeta: `heisen stress --url URL ...`.

    heisen stress --url URL [-X METHOD] [-H 'K: V']... [-d BODY]
                  (--burst N | --rate R/s --duration D | --concurrency C --duration D)
                  [--repeat K] [--protocol auto|http/1.1|h2] [--json]
                  [--cacert PEM | --insecure] [--cert PEM [--key PEM]]
                  [--allow-host HOST]...

Exactly one load model: `--burst N` (N requests released together, the
synchronized barrier of `_burst`; `--protocol h2`, or its older spelling
`--http2`, sends it as one h2c packet per connection; `--protocol auto` asks
the server first, `_protocol.negotiate`, and the result says what it chose
and why),
`--rate` (open model: requests at their intended times, latency corrected
for coordinated omission) or `--concurrency` (closed model: C users back to
back). `--repeat K` runs the load K times, one after the other, and reports
them merged.

An `https://` URL is loaded over TLS: verified against `--cacert` (else the
system's CA store) unless `--insecure`, with `--cert`/`--key` for a server
that asks for a client certificate; a burst offers ALPN "h2" for h2 and
"http/1.1" for HTTP/1.1, and `--protocol auto` takes the server's pick.
Targets are loopback only unless named with `--allow-host HOST`
(repeatable), the rule of a pipeline's `allow_hosts:` (`system._addresses`),
checked before any traffic.

`run_adhoc` returns an `AdHocResult` whenever the load ran, whatever the
status codes (they are in the result: judge them with a pipeline's
thresholds, not here); the command line shows it and exits 0. A bad
combination of options raises UsageError (exit 2); a target that accepts no
connection raises SystemUnavailable (exit 3).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from heisen._serialised import JsonObject
from heisen._units import parse_duration
from heisen.errors import UsageError
from heisen.stress._latency import LoadSummary
from heisen.stress._protocol import Asked, Negotiated
from heisen.stress._request import HttpRequest

if TYPE_CHECKING:
    from heisen.system import TlsSettings

__all__ = ["AdHocLoad", "AdHocPlan", "AdHocResult", "AdHocRun", "parse_rate", "plan", "run_adhoc"]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|m|min))?\s*$")


@dataclass(frozen=True)
class AdHocLoad:
    """The command-line options of ad hoc mode, as given (validated by `plan`)."""

    url: str
    method: str = "GET"
    headers: Sequence[str] = field(default_factory=list)
    data: str | None = None
    burst: int | None = None
    rate: str | None = None
    concurrency: int | None = None
    duration: str | None = None
    repeat: int = 1
    http2: bool = False
    protocol: str | None = None  # "auto", "http/1.1" or "h2"; None: http/1.1, or h2 with http2
    cacert: str | None = None
    insecure: bool = False
    cert: str | None = None
    key: str | None = None
    allow_hosts: Sequence[str] = ()


@dataclass(frozen=True)
class AdHocPlan:
    """A validated `AdHocLoad`: where, what, and which model."""

    host: str
    port: int
    request: HttpRequest
    model: str  # "burst", "rate" or "concurrency"
    size: int = 0  # burst requests or closed-model copies
    rate_per_s: float = 0.0
    duration_s: float = 0.0
    repeat: int = 1
    protocol: Asked = "http/1.1"
    tls: TlsSettings | None = None

    @property
    def http2(self) -> bool:
        """Whether the burst was asked to speak h2 (`--protocol h2` or `--http2`)."""
        return self.protocol == "h2"

    def describe(self) -> JsonObject:
        """The model as `--json` shows it (serialisation boundary)."""
        if self.model == "burst":
            return {
                "kind": "burst",
                "requests": self.size,
                "http2": self.http2,
                "protocol": self.protocol,
            }
        if self.model == "rate":
            return {"kind": "rate", "rate_per_s": self.rate_per_s, "duration_s": self.duration_s}
        return {"kind": "concurrency", "copies": self.size, "duration_s": self.duration_s}


def plan(load: AdHocLoad) -> AdHocPlan:
    """Validate the options; UsageError says what is wrong and how to write it."""
    from heisen.system import loopback_problems

    parts = urlsplit(load.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--url {load.url!r}: give an http:// or https:// URL with a host, "
            "e.g. http://127.0.0.1:8080/orders"
        )
    problems = loopback_problems(load.url, load.allow_hosts)
    if problems:
        raise UsageError(
            f"--url {load.url!r}: {'; '.join(problems)}; ad hoc mode sends only to loopback "
            "(127.0.0.1, localhost, ::1) and to the hosts named with --allow-host HOST"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UsageError(f"--url {load.url!r}: {exc}") from None
    models = [
        name
        for name, value in (
            ("--burst", load.burst),
            ("--rate", load.rate),
            ("--concurrency", load.concurrency),
        )
        if value is not None
    ]
    if len(models) != 1:
        found = " and ".join(models) if models else "none"
        raise UsageError(
            f"give exactly one load model: --burst N, --rate R/s --duration D, or --concurrency C "
            f"--duration D (found {found})"
        )
    if load.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {load.repeat}")
    base = AdHocPlan(
        parts.hostname,
        port,
        _request(load, parts.path or "/", parts.query),
        models[0].lstrip("-"),
        repeat=load.repeat,
        protocol=_protocol(load),
        tls=_tls(load, https=parts.scheme == "https"),
    )
    if load.burst is not None:
        if load.burst < 1 or load.burst > 10_000:
            raise UsageError(f"--burst takes 1 to 10000 requests, got {load.burst}")
        if load.duration is not None:
            raise UsageError(
                "--duration goes with --rate or --concurrency; a --burst is sent at once"
            )
        return _replace(base, size=load.burst)
    if base.protocol != "http/1.1":
        given = "--http2" if load.http2 else f"--protocol {base.protocol}"
        raise UsageError(
            f"{given} applies to --burst only (sustained load uses HTTP/1.1 keep-alive)"
        )
    if load.duration is None:
        raise UsageError(f"{models[0]} needs --duration, e.g. --duration 10s")
    duration = _duration(load.duration)
    if load.rate is not None:
        return _replace(base, rate_per_s=parse_rate(load.rate), duration_s=duration)
    assert load.concurrency is not None
    if load.concurrency < 1 or load.concurrency > 10_000:
        raise UsageError(f"--concurrency takes 1 to 10000 users, got {load.concurrency}")
    return _replace(base, size=load.concurrency, duration_s=duration)


def _tls(load: AdHocLoad, *, https: bool) -> TlsSettings | None:
    """The TLS settings of `--cacert`, `--insecure`, `--cert`, `--key` (`tls_from_flags`)."""
    from heisen.system import tls_from_flags

    return tls_from_flags(
        load.url,
        https=https,
        cacert=load.cacert,
        insecure=load.insecure,
        cert=load.cert,
        key=load.key,
    )


def _protocol(load: AdHocLoad) -> Asked:
    """`--protocol`, with `--http2` as its older spelling of `--protocol h2`."""
    if load.protocol is None:
        return "h2" if load.http2 else "http/1.1"
    choice = _PROTOCOLS.get(load.protocol.strip().lower())
    if choice is None:
        raise UsageError(
            f"--protocol {load.protocol!r}: choose auto, http/1.1 or h2 (auto asks the server: "
            "h2 if it answers the h2c preface, else http/1.1)"
        )
    if load.http2 and choice != "h2":
        raise UsageError(f"--http2 means --protocol h2, not --protocol {choice}: give one of them")
    return choice


_PROTOCOLS: dict[str, Asked] = {"auto": "auto", "http/1.1": "http/1.1", "h2": "h2"}


def parse_rate(text: str) -> float:
    """Requests per second in `500/s`, `500` or `600/m`."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"--rate {text!r}: write a positive rate such as 500/s, 500 or 600/m")
    per_minute = match.group(2) in ("m", "min")
    return float(match.group(1)) / (60.0 if per_minute else 1.0)


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"--duration must be positive, got {text!r}")
    return seconds


def _request(load: AdHocLoad, path: str, query: str) -> HttpRequest:
    headers: list[tuple[str, str]] = []
    for raw in load.headers:
        name, colon, value = raw.partition(":")
        if not colon or not name.strip():
            raise UsageError(f"-H {raw!r}: write a header as 'Name: value'")
        headers.append((name.strip(), value.strip()))
    target = path + (f"?{query}" if query else "")
    body = load.data.encode() if load.data is not None else b""
    return HttpRequest(load.method.upper(), target, tuple(headers), body)


def _replace(plan_: AdHocPlan, **changes: Any) -> AdHocPlan:
    from dataclasses import replace

    return replace(plan_, **changes)


@dataclass(frozen=True)
class AdHocRun:
    """One repetition of the load: its summary, and a burst's release spread (ms) and the
    protocol it spoke."""

    summary: LoadSummary
    release_spread_ms: float | None = None
    protocol: str | None = None

    def to_dict(self) -> JsonObject:
        data = self.summary.to_dict()
        if self.release_spread_ms is not None:
            data["release_spread_ms"] = round(self.release_spread_ms, 3)
        if self.protocol is not None:
            data["protocol"] = self.protocol
        return data


@dataclass(frozen=True)
class AdHocResult:
    """What the load did: every repetition merged, and each one on its own."""

    url: str
    plan: AdHocPlan
    merged: LoadSummary
    runs: list[AdHocRun]
    chosen: Negotiated | None = None  # a burst's protocol and why

    @property
    def method(self) -> str:
        return self.plan.request.method

    @property
    def rps(self) -> float:
        """Requests per second; of several runs, the mean of each run's (merged, the gaps count)."""
        if self.plan.repeat > 1:
            return round(sum(round(run.summary.rps, 1) for run in self.runs) / len(self.runs), 1)
        return round(self.merged.rps, 1)

    @property
    def release_spread_ms(self) -> tuple[float, float] | None:
        """The median and the largest burst release spread (ms), for bursts."""
        spreads = sorted(r.release_spread_ms for r in self.runs if r.release_spread_ms is not None)
        return (spreads[len(spreads) // 2], spreads[-1]) if spreads else None

    def to_dict(self) -> JsonObject:
        """The result as `--json` prints it (serialisation boundary)."""
        data: JsonObject = {
            "url": self.url,
            "method": self.method,
            "model": self.plan.describe(),
            "repeat": self.plan.repeat,
            **self.merged.to_dict(),
            "rps": self.rps,
        }
        spread = self.release_spread_ms
        if spread is not None:
            data["release_spread_ms"] = {"median": round(spread[0], 3), "max": round(spread[1], 3)}
        if self.chosen is not None:
            data["protocol"] = {
                "asked": self.plan.protocol,
                "used": self.chosen.protocol,
                "reason": self.chosen.reason,
            }
        data["runs"] = [run.to_dict() for run in self.runs]
        return data


def run_adhoc(load: AdHocLoad) -> AdHocResult:
    """Run the load `repeat` times; what it did, whatever the status codes."""
    from heisen.stress._adhoc_run import run_plan

    chosen = plan(load)
    return AdHocResult(load.url, chosen, *asyncio.run(run_plan(chosen)))
