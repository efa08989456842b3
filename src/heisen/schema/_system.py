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

    path: str = Field(
        default="/health",
        description="polled until it answers 200 to 399: then the replica or dependency is ready",
        examples=["/ready"],
    )
    timeout: Duration = Field(
        default=30.0, description="how long it may take to become ready", examples=["20s"]
    )

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
        examples=["certs/ca.pem"],
    )
    insecure: bool = Field(
        default=False,
        description="do not verify the server's certificate (nor its name)",
        examples=[True],
    )
    cert: str | None = Field(
        default=None,
        description="PEM client certificate, for a server that requires one "
        "(with key:, unless the file holds the key too)",
        examples=["certs/client.pem"],
    )
    key: str | None = Field(
        default=None, description="PEM private key of cert:", examples=["certs/client-key.pem"]
    )
    server_name: str | None = Field(
        default=None,
        description="the name the server's certificate must carry, also sent in SNI "
        "(default: the URL's host)",
        examples=["inventory.internal"],
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

    kind: DependencyKind = Field(
        description="postgres, redis or http: how heisen probes it and decodes its traffic",
        examples=["postgres"],
    )
    embedded: bool = Field(
        default=False,
        description="a real PostgreSQL or Redis that heisen starts and stops",
        examples=[True],
    )
    init: str | None = Field(
        default=None,
        description="SQL file run once after an embedded PostgreSQL starts",
        examples=["schema.sql"],
    )
    dsn: str | None = Field(
        default=None,
        description="a PostgreSQL that is already running",
        examples=["postgresql://app@127.0.0.1:5432/app"],
    )
    url: str | None = Field(
        default=None,
        description="a Redis or HTTP API that is already running",
        examples=["redis://127.0.0.1:6379/0"],
    )
    command: list[str] | None = Field(
        default=None,
        description="starts an HTTP dependency (with PORT set), templated",
        examples=[["{{ python }}", "payments_service.py"]],
    )
    stub: str | None = Field(
        default=None,
        description="a WireMock mapping root isolate serves instead",
        examples=["stubs/payments"],
    )
    image: str | None = Field(
        default=None,
        description="the container image that runs an HTTP dependency under the kubernetes "
        "backend (it must listen on $PORT, 8080, on all interfaces)",
        examples=["ghcr.io/you/payments:1"],
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="environment of a command: dependency, templated",
        examples=[{"MODE": '{{ env.MODE | default("buggy") }}'}],
    )
    health: Health = Field(
        default_factory=Health,
        description="the readiness check of an HTTP dependency",
        examples=["/ready"],
    )
    tls: Tls | None = Field(
        default=None,
        description="an HTTP dependency that speaks TLS: the CA, client certificate, or "
        "insecure: true (an https:// url: speaks TLS without it)",
        examples=[{"ca": "certs/ca.pem"}],
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
        if self.image and self.kind != DependencyKind.HTTP:
            raise located(
                self,
                (
                    ("image",),
                    "image: is for an HTTP dependency; the kubernetes backend runs "
                    "postgres and redis from their stock images",
                ),
            )
        if self.image and self.url:
            raise located(
                self,
                (
                    ("image",),
                    "image: runs an HTTP dependency heisen starts (command:) in the cluster; "
                    "one at url: is already running",
                ),
            )
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
    """CPU and memory limits of each replica (contain applies them; cgroups or Kubernetes)."""

    cpu: Cpu | None = Field(
        default=None, description="CPU limit in cores, `250m` or `1.5`", examples=["250m"]
    )
    memory: Memory | None = Field(
        default=None, description="memory limit, `256Mi`", examples=["256Mi"]
    )


class Service(Strict):
    """An HTTP service under test: replicas heisen starts from `command`, or one already at `url`."""

    command: list[str] | None = Field(
        default=None,
        description="how heisen starts each replica (with PORT set), templated",
        examples=[["{{ python }}", "app.py"]],
    )
    url: str | None = Field(
        default=None,
        description="a service already running, instead of command:",
        examples=["http://127.0.0.1:8080"],
    )
    cwd: str | None = Field(
        default=None,
        description="the replicas' working directory, relative to the pipeline file",
        examples=["services/inventory"],
    )
    replicas: int = L.REPLICAS.field(
        1, description="processes heisen runs behind its front proxy", examples=[2]
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="the replicas' environment, templated",
        examples=[{"DATABASE_URL": "{{ deps.postgres.dsn }}"}],
    )
    health: Health = Field(
        default_factory=Health,
        description="the readiness check of each replica",
        examples=[{"path": "/health", "timeout": "30s"}],
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="the replicas' limits (contain's resources: overrides them)",
        examples=[{"cpu": "500m", "memory": "256Mi"}],
    )
    stub: str | None = Field(
        default=None,
        description="a WireMock mapping root for this service (checked to exist; isolate "
        "serves the stubs of dependencies)",
        examples=["stubs/inventory"],
    )
    image: str | None = Field(
        default=None,
        description="container image for the Kubernetes backend",
        examples=["registry.local/inventory:1.4"],
    )
    tls: Tls | None = Field(
        default=None,
        description="the service speaks TLS: the CA, client certificate, or insecure: true "
        "(an https:// url: speaks TLS without it; with command:, the replicas speak TLS)",
        examples=[{"ca": "certs/ca.pem", "server_name": "localhost"}],
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
    """One HTTP request to a service; every string in it may be templated."""

    method: str = Field(default="GET", description="the HTTP method", examples=["POST"])
    path: str = Field(
        description="the path (and query) on the service", examples=["/concerts/{{ i % 3 }}/buy"]
    )
    service: str | None = Field(
        default=None,
        description="the service it goes to (default: the first one)",
        examples=["inventory"],
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="request headers",
        examples=[{"Idempotency-Key": "{{ run_id }}-{{ i }}"}],
    )
    json_body: Any = Field(
        default=None,
        alias="json",
        description="a JSON body (sent with Content-Type application/json)",
        examples=[{"user": "{{ faker.user_name }}", "qty": 1}],
    )
    body: str | None = Field(
        default=None, description="a raw body, instead of json:", examples=["id=1&qty=2"]
    )
    expect_status: list[HttpStatus] | None = Field(
        default=None,
        description="setup step: the statuses it may answer (default: 200 to 399); scenario "
        "request: the statuses counted as ok in load.<request> (default: 2xx)",
        examples=[[200, 204]],
    )


class HistorySpec(Strict):
    """How a request is recorded as an operation of a history model."""

    f: str = Field(
        description="the operation: read, write, cas, add (see History models below), or the "
        "name a rate history counts",
        examples=["write"],
    )
    key: str | None = Field(
        default=None,
        description="the key the operation is on; a history is checked key by key",
        examples=["concert:1"],
    )
    value: str | None = Field(
        default=None,
        description="request.<field> or response.<field>: where the operation's value is",
        examples=["response.price"],
    )
    initial: Any = Field(
        default=None,
        description="the key's value after setup, before any load",
        examples=[0],
    )


class RequestTemplate(HttpCall):
    """A named scenario request: the load sends it, `load.<name>` counts it."""

    history: HistorySpec | None = Field(
        default=None,
        description="record each of these requests as an operation for history: invariants",
        examples=[{"f": "write", "key": "price", "value": "request.price"}],
    )
    protocol: Literal["auto", "http/1.1", "h2"] = Field(
        default="http/1.1",
        description="what a burst of this request speaks: http/1.1 (the last-byte barrier), h2 "
        "(one HTTP/2 packet per connection: h2c prior knowledge, or ALPN h2 over TLS) or auto "
        "(ask the server once: h2 if it answers the h2c preface or picks h2 in ALPN, else "
        "http/1.1); sustained load always uses HTTP/1.1",
        examples=["h2"],
    )
    http2: bool = Field(
        default=False, description="the older spelling of protocol: h2", examples=[True]
    )

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
    """One step of the setup before each trial: exactly one of http:, sql:, redis:."""

    http: HttpCall | None = Field(
        default=None,
        description="a request to a service; an answer outside expect_status stops the trial",
        examples=[{"method": "POST", "path": "/reset"}],
    )
    sql: str | None = Field(
        default=None,
        description="SQL run on the PostgreSQL dependency",
        examples=["TRUNCATE tickets; UPDATE concerts SET sold = 0"],
    )
    redis: list[str] | None = Field(
        default=None, description="one Redis command, as words", examples=[["FLUSHDB"]]
    )
    on: str | None = Field(
        default=None,
        description="the dependency it runs on, when there are several of its kind",
        examples=["postgres"],
    )

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

    request: str = Field(description="the scenario request that writes", examples=["checkout"])
    status: list[HttpStatus] = Field(
        default_factory=lambda: [200, 201],
        description="the statuses that acknowledge a write",
        examples=[[201]],
    )
    id: str = Field(
        description="the field of the JSON response that names what was written",
        examples=["order_id"],
    )
    sql: str = Field(
        description="a query given %(ids)s returning the ids that are persisted",
        examples=["SELECT id FROM orders WHERE id = ANY(%(ids)s)"],
    )
    on: str | None = Field(
        default=None,
        description="the PostgreSQL dependency, when there are several",
        examples=["postgres"],
    )


class RateHistory(Strict):
    """`history: {model: rate, ...}`: at most `limit` ok operations `f` per key (or per replica)
    in any window `window` (a rate limiter's promise, checked over the recorded history)."""

    model: Literal["rate"] = Field(description="the rate model", examples=["rate"])
    f: str | None = Field(
        default=None,
        description="the history f that counts (default: the only one recorded)",
        examples=["acquire"],
    )
    limit: int = Field(
        ge=1, le=1_000_000, description="the most ok operations in any window", examples=[5]
    )
    window: Duration = Field(description="the sliding window's length", examples=["1s"])
    per: Literal["key", "replica"] = Field(
        default="key",
        description="key: the limit holds per key; replica: per key on each replica",
        examples=["replica"],
    )


class Invariant(Strict):
    """What must hold after every trial: exactly one probe, and `expect:` over what it gives
    (see What `expect:` can read below)."""

    name: str = Field(
        description="the invariant's name in findings and the ladder", examples=["no-oversell"]
    )
    sql: str | None = Field(
        default=None,
        description="a query on the PostgreSQL dependency",
        examples=["SELECT sold, capacity FROM concerts WHERE id = 1"],
    )
    redis: list[str] | None = Field(
        default=None, description="a Redis command, as words", examples=[["GET", "stock:1"]]
    )
    http: HttpCall | None = Field(
        default=None,
        description="a request to a service",
        examples=[{"path": "/concerts/1"}],
    )
    python: str | None = Field(
        default=None,
        description="module:function, called in a child process with the keyword arguments "
        "it names among deps, services, run_dir, trial, seed",
        examples=["checks:no_oversell"],
    )
    history: Literal["register", "cas-register", "counter", "set"] | RateHistory | None = Field(
        default=None,
        description="check the recorded operations against a model (see History models below)",
        examples=["register", {"model": "rate", "limit": 5, "window": "1s"}],
    )
    acknowledged: Acknowledged | None = Field(
        default=None,
        description="every write answered 2xx is in the database afterwards",
        examples=[
            {
                "request": "checkout",
                "id": "order_id",
                "sql": "SELECT id FROM orders WHERE id = ANY(%(ids)s)",
            }
        ],
    )
    on: str | None = Field(
        default=None,
        description="the dependency the probe runs on, when there are several of its kind",
        examples=["postgres"],
    )
    expect: str | None = Field(
        default=None,
        description="an expression over the probe's values (and load.*) that must be true",
        examples=["sold <= capacity"],
    )
    severity: str | None = Field(
        default=None,
        description="how much the race hit per operation in one trial, over expect:'s variables "
        "(`(sold - capacity) / load.checkout.ok`): the ladder's per_operation_rate",
        examples=["(sold - capacity) / load.checkout.ok"],
    )
    timeout: Duration | None = Field(
        default=None,
        description="python: probes only: how long one call may take (default 10s)",
        examples=["30s"],
    )
    settle: Offset | None = Field(
        default=None,
        description="run no earlier than this long after the load ended (default: scenario.settle)",
        examples=["1s"],
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
    request: str | None = Field(
        default=None,
        description="the scenario request sent (default: the scenario's first request)",
        examples=["checkout"],
    )
    mix: dict[str, MixWeight] | None = Field(
        default=None,
        description="request name -> weight, instead of request:",
        examples=[{"checkout": 9, "refund": 1}],
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
    """Requests released together: their last bytes are held and sent at one instant."""

    requests: int = L.BURST_REQUESTS.field(
        description="how many requests are released together", examples=[50]
    )


class Inject(_Targeted):
    """An open model: requests start at a fixed rate, whatever the answers take."""

    rate: float = L.RATE.field(description="requests started per second", examples=[200])
    during: Duration = Field(description="how long", examples=["10s"])


class RampInject(_Targeted):
    """An open model whose rate goes linearly from `from` to `to`."""

    from_rate: float = L.RAMP_FROM.field(
        alias="from", description="requests/s at the start", examples=[10]
    )
    to_rate: float = L.RATE.field(alias="to", description="requests/s at the end", examples=[500])
    during: Duration = Field(description="how long", examples=["30s"])


class Constant(_Targeted):
    """A closed model: `copies` clients, each sending its next request once answered."""

    copies: int = L.COPIES.field(description="concurrent clients", examples=[20])
    during: Duration = Field(description="how long", examples=["10s"])


class Pause(Strict):
    """`pause: {during: 1s}`, or `pause: 1s` for short."""

    during: Duration = Field(description="how long nothing is sent", examples=["1s"])

    @model_validator(mode="before")
    @classmethod
    def _duration_alone(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {"during": value}


class LoadStep(Strict):
    """One load model; a list of them runs in sequence."""

    burst: Burst | None = Field(
        default=None, description="requests released together", examples=[{"requests": 50}]
    )
    inject: Inject | None = Field(
        default=None,
        description="requests at a fixed rate (open model)",
        examples=[{"rate": 200, "during": "10s"}],
    )
    ramp_inject: RampInject | None = Field(
        default=None,
        description="requests at a rate that ramps (open model)",
        examples=[{"from": 10, "to": 500, "during": "30s"}],
    )
    constant: Constant | None = Field(
        default=None,
        description="a fixed number of clients (closed model)",
        examples=[{"copies": 20, "during": "10s"}],
    )
    pause: Pause | None = Field(
        default=None, description="nothing sent for a while", examples=["1s"]
    )
    replica: int | None = Field(
        default=None,
        ge=0,
        description="send this step's requests straight to this replica of the service, "
        "not through its front proxy (for a race between requests on one process)",
        examples=[0],
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

    setup: list[SetupStep] = Field(
        default_factory=list,
        description="steps run before each trial to reset state, in order",
        examples=[[{"http": {"method": "POST", "path": "/reset"}}]],
    )
    requests: dict[str, RequestTemplate] = Field(
        min_length=1,
        description="name -> a request the load sends",
        examples=[{"buy": {"method": "POST", "path": "/checkout", "json": {"qty": 1}}}],
    )
    load: list[LoadStep] = Field(
        min_length=1,
        description="load steps, run in sequence in each trial",
        examples=[[{"burst": {"requests": 50}}]],
    )
    timeout: Duration = Field(
        default=10.0,
        description="how long one request may take before its outcome is unknown (info)",
        examples=["5s"],
    )
    settle: Offset = Field(
        default=0.0,
        description="how long after the load the invariants run (`durable within 1s`)",
        examples=["1s"],
    )
    unknown_outcomes: Annotated[float, share(0.0, 1.0)] = Field(
        default=0.05,
        description="the share of requests whose outcome may be unknown (timeouts, resets) "
        "before a run without violations is inconclusive",
        examples=["5%"],
    )
