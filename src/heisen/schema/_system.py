"""What the user describes: dependencies, services, the scenario, invariants."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from heisen.schema import limits as L
from heisen.schema._types import (
    Cpu,
    Duration,
    HttpStatus,
    Memory,
    MixWeight,
    Offset,
    Strict,
    share,
)


class DependencyKind(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"
    HTTP = "http"


class Health(Strict):
    """`health: /ready` or `health: {path: /ready, timeout: 20s}`, for services and dependencies."""

    path: str = "/health"
    timeout: Duration = 30.0

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value


class Tls(Strict):
    """`tls: {ca: certs/ca.pem}`: how heisen checks the TLS of a service or an HTTP dependency.

    A `url: https://...` speaks TLS without it (verified against the system's CA store);
    on a service heisen starts with `command:`, `tls:` says its replicas speak TLS.
    Paths are relative to the pipeline file."""

    ca: str | None = Field(
        default=None,
        description="PEM file of the CA that signed the server's certificate "
        "(default: the system's CA store)",
    )
    insecure: bool = Field(
        default=False, description="do not verify the server's certificate (nor its name)"
    )
    cert: str | None = Field(
        default=None,
        description="PEM client certificate, for a server that requires one "
        "(with key:, unless the file holds the key too)",
    )
    key: str | None = Field(default=None, description="PEM private key of cert:")
    server_name: str | None = Field(
        default=None,
        description="the name the server's certificate must carry, also sent in SNI "
        "(default: the URL's host)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Tls:
        if self.insecure and self.ca is not None:
            raise located(
                self,
                (("insecure",), "insecure: true skips the check ca: is for; give one of them"),
            )
        if self.key is not None and self.cert is None:
            raise located(self, (("key",), "key: is the private key of cert:; give cert: too"))
        return self


def _tls_matches_url(url: str | None, tls: Tls | None) -> str | None:
    """Why `tls:` contradicts `url:`, or None."""
    if tls is not None and url is not None and not url.lower().startswith("https://"):
        return "tls: is for a service reached over TLS: give an https:// url:"
    return None


class Dependency(Strict):
    """A database, cache or HTTP API the services use: started by heisen or already running."""

    kind: DependencyKind
    embedded: bool = False
    init: str | None = Field(
        default=None, description="SQL file run once after an embedded PostgreSQL starts"
    )
    dsn: str | None = None
    url: str | None = None
    command: list[str] | None = None
    stub: str | None = Field(
        default=None, description="a WireMock mapping root isolate serves instead"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="environment of a command: dependency, templated"
    )
    health: Health = Field(default_factory=Health)
    tls: Tls | None = Field(
        default=None,
        description="an HTTP dependency that speaks TLS: the CA, client certificate, or "
        "insecure: true (an https:// url: speaks TLS without it)",
    )

    @model_validator(mode="after")
    def _one_way_to_reach_it(self) -> Dependency:
        ways = [name for name in ("embedded", "dsn", "url", "command") if getattr(self, name)]
        if len(ways) != 1:
            raise ValueError(
                "say how to reach it in exactly one way: embedded: true, dsn:, url: or command: "
                f"(found {', '.join(ways) or 'none'})"
            )
        if self.embedded and self.kind == DependencyKind.HTTP:
            raise ValueError(
                "embedded: true is for postgres and redis; an HTTP dependency takes command: or url:"
            )
        if self.command and self.kind != DependencyKind.HTTP:
            raise ValueError(
                "command: starts an HTTP dependency; use embedded: true for postgres and redis"
            )
        if self.env and not self.command:
            raise located(self, (("env",), "env: is for a dependency heisen starts with command:"))
        if self.init and not (self.embedded and self.kind == DependencyKind.POSTGRES):
            raise ValueError("init: (an SQL file) applies to an embedded postgres only")
        if self.tls is not None and self.kind != DependencyKind.HTTP:
            raise located(self, (("tls",), "tls: is for an HTTP dependency"))
        contradiction = _tls_matches_url(self.url, self.tls)
        if contradiction:
            raise located(self, (("tls",), contradiction))
        return self

    @property
    def speaks_tls(self) -> bool:
        """Whether heisen talks TLS to it: an https:// url:, or tls: given."""
        return self.tls is not None or (self.url or "").lower().startswith("https://")


class Resources(Strict):
    cpu: Cpu | None = None
    memory: Memory | None = None


class Service(Strict):
    """An HTTP service under test: replicas heisen starts from `command`, or one already at `url`."""

    command: list[str] | None = None
    url: str | None = None
    cwd: str | None = None
    replicas: int = L.REPLICAS.field(1)
    env: dict[str, str] = Field(default_factory=dict)
    health: Health = Field(default_factory=Health)
    resources: Resources = Field(default_factory=Resources)
    stub: str | None = None
    image: str | None = Field(
        default=None, description="container image for the Kubernetes backend"
    )
    tls: Tls | None = Field(
        default=None,
        description="the service speaks TLS: the CA, client certificate, or insecure: true "
        "(an https:// url: speaks TLS without it; with command:, the replicas speak TLS)",
    )

    @model_validator(mode="after")
    def _command_or_url(self) -> Service:
        if bool(self.command) == bool(self.url):
            raise ValueError(
                "give exactly one of command: (heisen starts it) or url: (already running)"
            )
        contradiction = _tls_matches_url(self.url, self.tls)
        if contradiction:
            raise located(self, (("tls",), contradiction))
        return self

    @property
    def speaks_tls(self) -> bool:
        """Whether heisen talks TLS to it: an https:// url:, or tls: given."""
        return self.tls is not None or (self.url or "").lower().startswith("https://")


class HttpCall(Strict):
    method: str = "GET"
    path: str
    service: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    expect_status: list[HttpStatus] | None = None


class HistorySpec(Strict):
    """How a request is recorded as an operation of a history model."""

    f: str
    key: str | None = None
    value: str | None = Field(
        default=None,
        description="request.<field> or response.<field>: where the operation's value is",
    )
    initial: Any = Field(default=None, description="the key's value after setup, before any load")


class RequestTemplate(HttpCall):
    history: HistorySpec | None = None
    protocol: Literal["auto", "http/1.1", "h2"] = Field(
        default="http/1.1",
        description="what a burst of this request speaks: http/1.1 (the last-byte barrier), h2 "
        "(one HTTP/2 packet per connection: h2c prior knowledge, or ALPN h2 over TLS) or auto "
        "(ask the server once: h2 if it answers the h2c preface or picks h2 in ALPN, else "
        "http/1.1); sustained load always uses HTTP/1.1",
    )
    http2: bool = Field(default=False, description="the older spelling of protocol: h2")

    @model_validator(mode="after")
    def _http2_means_h2(self) -> RequestTemplate:
        said = self.model_fields_set
        if "http2" in said and "protocol" in said and self.http2 != (self.protocol == "h2"):
            raise located(
                self,
                (
                    ("http2",),
                    f"http2: {str(self.http2).lower()} contradicts protocol: {self.protocol}; "
                    "keep protocol: and drop http2: (http2: true is the older spelling of "
                    "protocol: h2)",
                ),
            )
        if self.http2:
            object.__setattr__(self, "protocol", "h2")  # frozen: set once, while validating
        return self


class SetupStep(Strict):
    http: HttpCall | None = None
    sql: str | None = None
    redis: list[str] | None = None
    on: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SetupStep:
        kinds = [name for name in ("http", "sql", "redis") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a setup step is exactly one of http:, sql:, redis: (found {', '.join(kinds) or 'none'})"
            )
        return self


class Acknowledged(Strict):
    """Writes a 2xx acknowledged, checked afterwards against the database."""

    request: str
    status: list[HttpStatus] = Field(default_factory=lambda: [200, 201])
    id: str = Field(description="the field of the JSON response that names what was written")
    sql: str = Field(description="a query given %(ids)s returning the ids that are persisted")
    on: str | None = None


class RateHistory(Strict):
    """`history: {model: rate, ...}`: at most `limit` ok operations `f` per key (or per replica)
    in any window `window` (a rate limiter's promise, checked over the recorded history)."""

    model: Literal["rate"]
    f: str | None = Field(
        default=None, description="the history f that counts (default: the only one recorded)"
    )
    limit: int = Field(ge=1, le=1_000_000)
    window: Duration
    per: Literal["key", "replica"] = "key"


class Invariant(Strict):
    name: str
    sql: str | None = None
    redis: list[str] | None = None
    http: HttpCall | None = None
    python: str | None = None
    history: Literal["register", "cas-register", "counter", "set"] | RateHistory | None = None
    acknowledged: Acknowledged | None = None
    on: str | None = None
    expect: str | None = None
    severity: str | None = Field(
        default=None,
        description="how much the race hit per operation in one trial, over expect:'s variables "
        "(`(sold - capacity) / load.checkout.ok`): the ladder's per_operation_rate",
    )
    timeout: Duration | None = Field(
        default=None, description="python: probes only: how long one call may take (default 10s)"
    )
    settle: Offset | None = Field(
        default=None,
        description="run no earlier than this long after the load ended (default: scenario.settle)",
    )

    @model_validator(mode="after")
    def _one_probe(self) -> Invariant:
        kinds = [
            n
            for n in ("sql", "redis", "http", "python", "history", "acknowledged")
            if getattr(self, n)
        ]
        if len(kinds) != 1:
            raise ValueError(
                "an invariant is exactly one probe: sql:, redis:, http:, python:, history: or acknowledged: "
                f"(found {', '.join(kinds) or 'none'})"
            )
        if kinds[0] in ("sql", "redis", "http", "python") and not self.expect:
            raise ValueError(f"a {kinds[0]}: probe needs expect: (for example `sold <= capacity`)")
        if self.severity is not None and kinds[0] not in ("sql", "redis", "http", "python"):
            raise ValueError(
                "severity: is for sql:, redis:, http: and python: probes (it reads expect:'s variables)"
            )
        if self.timeout is not None and kinds[0] != "python":
            raise ValueError("timeout: is for python: probes only")
        return self


class _Targeted(Strict):
    request: str | None = None
    mix: dict[str, MixWeight] | None = Field(
        default=None, description="request name -> weight, instead of request:"
    )

    @model_validator(mode="after")
    def _request_or_mix(self) -> _Targeted:
        if self.request is not None and self.mix is not None:
            raise ValueError("give request: or mix:, not both")
        if self.mix is not None and (
            not self.mix or any(weight <= 0 for weight in self.mix.values())
        ):
            raise ValueError("mix: maps request names to positive weights")
        for name, weight_share in self.shares().items():
            if weight_share < L.MIX_MIN_SHARE:
                raise ValueError(
                    f"mix: {name!r} has {weight_share:.2%} of the weight; a mix spreads its requests "
                    f"over 100 slots, so it would never be sent: give it at least "
                    f"{L.MIX_MIN_SHARE:.0%}"
                )
        return self

    def shares(self) -> dict[str, float]:
        """Each request's share of the mix (empty without a mix)."""
        total = sum((self.mix or {}).values())
        return {name: weight / total for name, weight in (self.mix or {}).items()}

    def request_names(self) -> list[str]:
        if self.mix is not None:
            return list(self.mix)
        return [self.request] if self.request is not None else []


class Burst(_Targeted):
    requests: int = L.BURST_REQUESTS.field()


class Inject(_Targeted):
    rate: float = L.RATE.field()
    during: Duration


class RampInject(_Targeted):
    from_rate: float = L.RAMP_FROM.field(alias="from")
    to_rate: float = L.RATE.field(alias="to")
    during: Duration


class Constant(_Targeted):
    copies: int = L.COPIES.field()
    during: Duration


class Pause(Strict):
    """`pause: {during: 1s}`, or `pause: 1s` for short."""

    during: Duration

    @model_validator(mode="before")
    @classmethod
    def _duration_alone(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {"during": value}


class LoadStep(Strict):
    """One load model; a list of them runs in sequence."""

    burst: Burst | None = None
    inject: Inject | None = None
    ramp_inject: RampInject | None = None
    constant: Constant | None = None
    pause: Pause | None = None
    replica: int | None = Field(
        default=None,
        ge=0,
        description="send this step's requests straight to this replica of the service, "
        "not through its front proxy (for a race between requests on one process)",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> LoadStep:
        kinds = [
            n for n in ("burst", "inject", "ramp_inject", "constant", "pause") if getattr(self, n)
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a load step is exactly one of burst:, inject:, ramp_inject:, constant:, pause: "
                f"(found {', '.join(kinds) or 'none'})"
            )
        if self.replica is not None and self.pause is not None:
            raise located(self, (("replica",), "replica: aims requests; a pause sends none"))
        return self

    @property
    def kind(self) -> str:
        for name in ("burst", "inject", "ramp_inject", "constant", "pause"):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated to have one")


def located(model: Strict, *problems: tuple[tuple[str | int, ...], str]) -> ValidationError:
    """Validation errors at places inside `model`, each `(loc, message)` (a validator's
    ValueError would point at the model itself); raise it from a model validator."""
    details = [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=model)
        for loc, message in problems
    ]
    return ValidationError.from_exception_data(type(model).__name__, details)


class Scenario(Strict):
    """The targeted scenario every phase from stress on re-runs: setup, load, invariants."""

    setup: list[SetupStep] = Field(default_factory=list)
    requests: dict[str, RequestTemplate] = Field(min_length=1)
    load: list[LoadStep] = Field(min_length=1)
    timeout: Duration = 10.0
    settle: Offset = Field(
        default=0.0, description="how long after the load the invariants run (`durable within 1s`)"
    )
    unknown_outcomes: Annotated[float, share(0.0, 1.0)] = Field(
        default=0.05,
        description="the share of requests whose outcome may be unknown (timeouts, resets) "
        "before a run without violations is inconclusive",
    )
