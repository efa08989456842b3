"""One section per phase under `phases:` in pipeline.yaml."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from heisen._serialised import JsonObject
from heisen.schema import limits as L
from heisen.schema._system import Burst, Inject, LoadStep, Resources, SetupStep, located
from heisen.schema._types import Duration, Offset, Strict, Threshold, share


class PhaseName(StrEnum):
    """The six phases, in run order (iterating the enum gives that order)."""

    PREDICT = "predict"
    STRESS = "stress"
    FUZZ = "fuzz"
    ISOLATE = "isolate"
    CONTAIN = "contain"
    CHAOS = "chaos"


LOAD_PHASES = (PhaseName.STRESS, PhaseName.ISOLATE, PhaseName.CONTAIN, PhaseName.CHAOS)
"""The phases that run the scenario's load: trials, violations, requests, latency."""


class PhaseSection(Strict):
    enabled: bool = Field(
        default=True,
        description="false keeps the section but skips the phase (the manifest says why)",
        examples=[False],
    )


class Observe(Strict):
    """How predict watches the running system: each request sent alone, `repeat` times."""

    repeat: int = L.OBSERVE_REPEAT.field(
        5, description="how many times each request is sent alone", examples=[5]
    )
    requests: list[str] | None = Field(
        default=None,
        description="the scenario requests to observe (default: all of them)",
        examples=[["checkout"]],
    )


class PredictSection(PhaseSection):
    """Where a race is most likely, and at what load: read from the running system's own
    traffic, or simulated from an architecture model."""

    architecture: str | None = Field(
        default=None,
        description="a model of the operations to simulate; without it predict observes the "
        "running system's own traffic",
        examples=["architecture.yaml"],
    )
    observe: Observe | None = Field(
        default=None,
        description="observe the running system (also with architecture:), and how",
        examples=[{"repeat": 5}],
    )
    incidents: str | None = Field(
        default=None,
        description="a file of past incidents that weighs the simulation's priors",
        examples=["incidents.yaml"],
    )
    agents: int = L.AGENTS.field(
        2000,
        description="concurrent agents of the swarm simulation (the largest burst simulated)",
        examples=[2000],
    )
    cycles: int = L.CYCLES.field(
        2000,
        description="simulated repetitions of a burst, over which a predicted rate is counted",
        examples=[2000],
    )

    @property
    def observes(self) -> bool:
        """Whether predict reads the running system (no architecture, or `observe:` given)."""
        return self.architecture is None or self.observe is not None

    @property
    def observation(self) -> Observe:
        return self.observe or Observe()


class Sweep(Strict):
    """Bursts of growing size, each run `trials` times after the setup, up to the smallest
    that reproduces the ladder's target in at least half of its trials."""

    start: int = L.SWEEP_SIZE.field(2, description="first burst size", examples=[2])
    factor: float = L.SWEEP_FACTOR.field(
        2.0, description="each burst size is the last times this (at least one more)", examples=[2]
    )
    max: int = L.SWEEP_SIZE.field(64, description="largest burst size tried", examples=[64])
    trials: int = L.SWEEP_TRIALS.field(5, description="trials per burst size", examples=[5])
    request: str | None = Field(
        default=None,
        description="the request each burst sends (default: the load's burst: step's, "
        "or the scenario's only request)",
        examples=["checkout"],
    )
    setup: list[SetupStep] | None = Field(
        default=None,
        description="the setup before each burst, instead of the scenario's (e.g. a capacity "
        "small enough for a burst of 2 to overrun)",
        examples=[[{"sql": "UPDATE concerts SET capacity = 1"}]],
    )
    spread: Duration | None = Field(
        default=None,
        description="send a round's requests evenly over this long instead of at once: a "
        "ruler for the window, which then needs more than spread / window requests",
        examples=["100ms"],
    )

    @model_validator(mode="after")
    def _bounded(self) -> Sweep:
        if self.start > self.max:
            raise ValueError(f"start ({self.start}) is above max ({self.max}): nothing would run")
        rounds = self.rounds()
        if rounds * self.trials > L.SWEEP_TOTAL_TRIALS:
            raise ValueError(
                f"this sweep may run {rounds} rounds x {self.trials} trials = "
                f"{rounds * self.trials:,} trials, over the {L.SWEEP_TOTAL_TRIALS:,} a sweep may "
                "run; raise factor, lower max or trials, or set start"
            )
        return self

    def rounds(self) -> int:
        """How many burst sizes the sweep tries at most."""
        return len(self.sizes())

    def step(
        self, size: int, load: Sequence[LoadStep], requests: Collection[str]
    ) -> LoadStep | None:
        """The load of one round: `size` requests of `request:`, else shaped like the load's
        first burst, else of the scenario's only request (None: the sweep cannot tell which);
        at once, or evenly over `spread`."""
        shaped = next((step.burst for step in load if step.burst is not None), None)
        if self.request is not None:
            target: dict[str, Any] = {"request": self.request}
        elif shaped is not None:
            target = {"request": shaped.request, "mix": shaped.mix}
        elif len(requests) == 1:
            target = {"request": next(iter(requests))}
        else:
            return None
        if self.spread is None:
            return LoadStep(burst=Burst(requests=size, **target))
        # offsets i * spread / size for i < size: exactly `size` requests
        return LoadStep(inject=Inject(rate=size / self.spread, during=self.spread, **target))

    def sizes(self) -> list[int]:
        """The burst sizes, from start growing by `factor` (at least one) up to max."""
        sizes, size = [], self.start
        while size <= self.max:
            sizes.append(size)
            size = max(size + 1, int(size * self.factor))
        return sizes


class Confidence(Strict):
    """Run trials until 0 violations bound the rate below `rate_below` at `level`, or time is up."""

    rate_below: Annotated[float, share(0.001, 0.5)] = Field(
        description="the violation rate to prove the race below", examples=["1%"]
    )
    level: Annotated[float, share(0.5, 0.9999)] = Field(
        default=0.95, description="the confidence level of that bound", examples=["95%"]
    )
    max_duration: Duration = Field(
        default=300.0,
        description="wall time the phase may spend on trials before it stops unproven",
        examples=["5m"],
    )


class TrialsSection(PhaseSection):
    trials: int = L.TRIALS.field(
        10, description="trials to run: setup, load, invariants, each time", examples=[10]
    )
    confidence: Confidence | None = Field(
        default=None,
        description="instead of a fixed number of trials, run until no violation proves the "
        "rate below a bound (or time is up)",
        examples=[{"rate_below": "1%", "level": "95%"}],
    )
    invariants: list[str] | None = Field(
        default=None,
        min_length=1,
        description="the invariants this phase checks (default: all); a load that cannot "
        "exercise the others leaves them out",
        examples=[["no-oversell"]],
    )
    stop: Literal["first-violation", "all"] = Field(
        default="all",
        description="all: run every trial; first-violation: stop at the first violating one",
        examples=["first-violation"],
    )
    load: list[LoadStep] | None = Field(
        default=None,
        description="this phase's load, instead of the scenario's",
        examples=[[{"burst": {"requests": 100}}]],
    )
    thresholds: list[Threshold] = Field(
        default_factory=list,
        description="k6-style pass conditions over the phase's figures: METRIC OP VALUE, "
        "metrics p50 p75 p90 p95 p99 p99.9 max errors rps violations",
        examples=[["p99 < 500ms", "errors < 1%"]],
    )
    workers: Annotated[int, L.WORKERS.field()] | Literal["auto"] = Field(
        default=1,
        description="processes that share a sustained load (auto: half the CPUs heisen may "
        "use); bursts stay in one process",
        examples=["auto"],
    )
    sweep: Sweep | None = Field(
        default=None,
        description="the smallest burst that reproduces the target (isolate and contain "
        "default to stress's sweep)",
        examples=[{"start": 2, "max": 64, "trials": 5}],
    )


class StressSection(TrialsSection):
    """Synchronized bursts or sustained load of the scenario, trial after trial."""

    target: Literal["scenario", "hotspot"] = Field(
        default="scenario",
        description="scenario: the scenario's load; hotspot: aim at predict's hotspot number "
        "`hotspot:` (its endpoint and load)",
        examples=["hotspot"],
    )
    hotspot: int = L.HOTSPOT.field(
        1, description="which of predict's hotspots, highest score first", examples=[1]
    )


class FuzzField(Strict):
    """One field of the fuzzed request's JSON body, as a JSON Schema would say it."""

    type: Literal["integer", "number", "string", "boolean", "array", "object"] = Field(
        description="the JSON type of the values", examples=["integer"]
    )
    format: str | None = Field(
        default=None,
        description="a string format the values follow (email, uuid, date-time, ...)",
        examples=["email"],
    )
    minimum: float | None = Field(
        default=None, description="the least number (edge cases go below it)", examples=[1]
    )
    maximum: float | None = Field(
        default=None, description="the greatest number (edge cases go above it)", examples=[10]
    )
    min_length: int | None = Field(
        default=None, description="the shortest string or array", examples=[1]
    )
    max_length: int | None = Field(
        default=None, description="the longest string or array", examples=[64]
    )
    enum: list[Any] | None = Field(
        default=None, description="the only values allowed", examples=[["card", "cash"]]
    )
    nullable: bool = Field(default=False, description="null is a valid value", examples=[True])
    required: bool = Field(
        default=True, description="the body must hold the field", examples=[False]
    )


class FuzzSection(PhaseSection):
    """Faker values and edge cases in one request's body, sent concurrently, shrunk on failure."""

    request: str | None = Field(
        default=None,
        description="the scenario request whose body is fuzzed",
        examples=["checkout"],
    )
    openapi: str | None = Field(
        default=None,
        description="an OpenAPI document that gives the body's schema and the responses "
        "the service may give",
        examples=["openapi.yaml"],
    )
    operation: str | None = Field(
        default=None,
        description="the operation in openapi:, as `METHOD /path` or its operationId (default: "
        "the one matching request:)",
        examples=["POST /orders"],
    )
    fields: dict[str, FuzzField] | None = Field(
        default=None,
        description="body field -> its schema, declared here instead of openapi:",
        examples=[{"qty": {"type": "integer", "minimum": 1, "maximum": 10}}],
    )
    cases: int = L.FUZZ_CASES.field(100, description="cases to send", examples=[200])
    concurrency: int = L.CONCURRENCY.field(
        1, description="cases sent together, in one burst", examples=[8]
    )
    max_string_bytes: int = L.MAX_STRING_BYTES.field(
        65536, description="the longest string a case may hold", examples=[4096]
    )
    shrink: bool = Field(
        default=True,
        description="shrink a failing case to the smallest that fails the same way",
        examples=[False],
    )

    @model_validator(mode="after")
    def _a_schema(self) -> FuzzSection:
        if not self.fields and not self.openapi:
            raise ValueError(
                "fuzz needs a schema: fields: (declared here) or openapi: (a document)"
            )
        return self


class Toxic(Strict):
    """What the proxy on one link does to its bytes (Toxiproxy's model; see Toxics below)."""

    link: str = Field(
        description="service->dependency, e.g. inventory->redis", examples=["inventory->redis"]
    )
    type: Literal[
        "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
    ] = Field(description="what the toxic does (see Toxics below)", examples=["latency"])
    stream: Literal["upstream", "downstream"] = Field(
        default="downstream",
        description="downstream: the dependency's answers to the service; upstream: what the "
        "service sends the dependency",
        examples=["upstream"],
    )
    toxicity: float = L.FRACTION.field(
        1.0, description="the share of connections the toxic applies to", examples=[0.5]
    )
    attributes: JsonObject = Field(
        default_factory=dict,
        description="the type's settings (see Toxics below)",
        examples=[{"latency": 100, "jitter": 10}],
    )


class Escalation(Strict):
    """How long isolate (no `toxics:`) or contain (no `cpu:`) may search for a condition that
    reproduces the race before the phase's own trials."""

    budget: Duration = Field(
        default=60.0,
        description="wall time the search may take; it stops and says so after",
        examples=["2m"],
    )


class IsolateSection(TrialsSection):
    """The scenario's trials with the timing window widened: toxics on links, stubs."""

    stubs: list[str] = Field(
        default_factory=list,
        description="dependencies replaced by their stub: root",
        examples=[["payments"]],
    )
    toxics: list[Toxic] = Field(
        default_factory=list,
        description="toxics held on their links through the phase's trials",
        examples=[[{"link": "inventory->redis", "type": "latency", "attributes": {"latency": 50}}]],
    )
    escalation: Escalation = Field(
        default_factory=Escalation,
        description="with no toxics: latency tried on each link at 1, 10, 100, 500 ms",
        examples=[{"budget": "2m"}],
    )


CLUSTER_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default")
"""The cluster's own namespaces: heisen creates, limits and kills there only when told to."""
_DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def dns_label(namespace: str) -> str:
    """`namespace` when it is a DNS-1123 label, the only names Kubernetes gives namespaces."""
    if not _DNS_1123_LABEL.fullmatch(namespace):
        raise ValueError(
            f"{namespace!r} is not a Kubernetes namespace name: at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return namespace


def refuse_cluster_namespace(section: Strict, namespace: str, allowed: bool) -> None:
    """A located error when `namespace` is one of the cluster's own and `allow_namespace:` is
    not true."""
    if namespace in CLUSTER_NAMESPACES and not allowed:
        raise located(
            section,
            (
                ("namespace",),
                f"{namespace} is one of the cluster's own namespaces; heisen's Deployments and "
                "faults belong in a namespace of their own (e.g. heisen), or set "
                "allow_namespace: true",
            ),
        )


class InNamespace(Strict):
    """Where a phase with `backend: kubernetes` runs: a namespace heisen creates and deletes."""

    namespace: str = Field(
        default="heisen",
        description="the Kubernetes namespace heisen creates for the phase and deletes after it "
        "(not kube-system, kube-public, kube-node-lease or default without allow_namespace:)",
        examples=["heisen-ci"],
    )
    allow_namespace: bool = Field(
        default=False,
        description="true lets namespace: be one of the cluster's own (kube-system, kube-public, "
        "kube-node-lease, default)",
        examples=[True],
    )

    _namespace = field_validator("namespace")(dns_label)

    @model_validator(mode="after")
    def _not_the_clusters_own(self) -> InNamespace:
        refuse_cluster_namespace(self, self.namespace, self.allow_namespace)
        return self


class ContainSection(TrialsSection, InNamespace):
    """The scenario's trials with replicas under real CPU and memory limits."""

    backend: Literal["local", "kubernetes"] = Field(
        default="local",
        description="local: cgroups on this machine; kubernetes: Deployments with "
        "resources.limits in namespace:",
        examples=["kubernetes"],
    )
    strict: bool = Field(
        default=False,
        description="an error, not a warning, when cgroups cannot enforce the limits (locally "
        "heisen falls back to a SIGSTOP/SIGCONT duty cycle for CPU)",
        examples=[True],
    )
    resources: dict[str, Resources] = Field(
        default_factory=dict,
        description="service -> its limits in this phase",
        examples=[{"inventory": {"cpu": "250m", "memory": "256Mi"}}],
    )
    agent_image: str = Field(
        default="heisen/agent:latest",
        description="the image of heisen's load agent that runs the trials inside the cluster",
        examples=["ghcr.io/acme/heisen-agent:0.1.0"],
    )
    kubeconfig: str | None = Field(
        default=None,
        description="the kubeconfig file (default: the client's, KUBECONFIG or ~/.kube/config)",
        examples=["~/.kube/config"],
    )
    context: str | None = Field(
        default=None,
        description="the kubeconfig context (default: its current one)",
        examples=["kind-heisen"],
    )
    escalation: Escalation = Field(
        default_factory=Escalation,
        description="with no cpu: limit, 500m, 250m and 100m tried on each service",
        examples=[{"budget": "2m"}],
    )


class Experiment(Strict):
    """One fault chaos brings while the load runs, `count` rounds of it (LitmusChaos' model)."""

    name: str = Field(description="the experiment's name in the manifest", examples=["kill-one"])
    kind: Literal[
        "pod-delete",
        "container-kill",
        "pod-network-latency",
        "pod-network-loss",
        "reset-peer",
        "partition",
        "pod-cpu-hog",
        "dependency-restart",
    ] = Field(
        description="what is done: kill replicas (pod-delete, container-kill), fault a link "
        "(pod-network-latency, pod-network-loss, reset-peer, partition), burn CPU "
        "(pod-cpu-hog) or restart a dependency (see Replica kills below)",
        examples=["pod-delete"],
    )
    service: str | None = Field(
        default=None,
        description="the service whose replicas are hit (kills, pod-cpu-hog)",
        examples=["inventory"],
    )
    link: str | None = Field(
        default=None,
        description="service->dependency, for the network kinds",
        examples=["inventory->redis"],
    )
    dependency: str | None = Field(
        default=None, description="the dependency dependency-restart restarts", examples=["redis"]
    )
    count: int = L.EXPERIMENT_COUNT.field(1, description="rounds to run", examples=[3])
    interval: Duration | None = Field(
        default=None,
        description="time between the starts of rounds (default: duration / count for kills "
        "and restarts, duration for timed faults, back to back)",
        examples=["5s"],
    )
    duration: Duration = Field(
        default=10.0,
        description="how long a timed fault lasts; for kills and restarts, the span the "
        "rounds share",
        examples=["10s"],
    )
    start: Offset = Field(
        default=0.0,
        description="when the first round starts, after the load began",
        examples=["2s"],
    )
    percentage: int = L.PERCENTAGE.field(
        100,
        description="the share of the service's replicas a kill hits (at least one)",
        examples=[50],
    )
    force: bool = Field(
        default=True,
        description="pod-delete: SIGKILL at once; false: SIGTERM, then SIGKILL after grace",
        examples=[False],
    )
    grace: Offset = Field(
        default=0.0, description="with force: false, the wait before SIGKILL", examples=["5s"]
    )
    sequence: Literal["serial", "parallel"] = Field(
        default="serial",
        description="serial: one replica at a time, each replacement ready before the next "
        "kill; parallel: all at once",
        examples=["parallel"],
    )
    attributes: JsonObject = Field(
        default_factory=dict,
        description="the network fault's toxic attributes (pod-network-latency: latency, "
        "jitter or a distribution, default 2000 ms; pod-network-loss: loss, percent of "
        "connections; reset-peer: timeout ms)",
        examples=[{"latency": 500, "jitter": 100}],
    )
    cores: int = L.CORES.field(
        1, description="pod-cpu-hog: burner processes per target replica", examples=[2]
    )


class Probe(Strict):
    """A steady-state check of chaos: an invariant, or the service's availability and latency."""

    name: str = Field(description="the probe's name in the manifest", examples=["available"])
    invariant: str | None = Field(
        default=None,
        description="evaluate this pipeline invariant (instead of http:)",
        examples=["no-oversell"],
    )
    http: str | None = Field(
        default=None,
        description="METHOD /path on the target service; judges the chaos load's traffic "
        "since the last evaluation (answered: a complete response below 500) and its own "
        "request, which must answer 2xx",
        examples=["GET /health"],
    )
    mode: Literal["SOT", "EOT", "Continuous", "OnChaos", "Edge"] = Field(
        default="Edge",
        description="when it runs: SOT once before the faults, EOT once after, Edge both, "
        "Continuous every interval during the load, OnChaos every interval while a fault "
        "is active",
        examples=["Continuous"],
    )
    interval: Duration = Field(
        default=1.0,
        description="time between evaluations (Continuous, OnChaos)",
        examples=["500ms"],
    )
    availability: float | None = L.FRACTION.field(
        None,
        description="http: the least share of answered requests (without it every one of the "
        "probe's own requests must answer 2xx)",
        examples=[0.8],
    )
    latency_p99: Duration | None = Field(
        default=None,
        description="http: the most the requests' 99th percentile latency may be",
        examples=["250ms"],
    )
    tolerance: float = L.FRACTION.field(
        0.0,
        description="the share of the probe's evaluations in one window that may fail",
        examples=[0.1],
    )


class ChaosSection(PhaseSection, InNamespace):
    """Load the scenario at a steady rate while experiments kill and fault; probe the steady
    state; check that nothing acknowledged was lost."""

    experiments: list[Experiment] = Field(
        description="the faults, each on its own schedule",
        examples=[[{"name": "kill-one", "kind": "pod-delete", "service": "inventory"}]],
    )
    probes: list[Probe] = Field(
        default_factory=list,
        description="steady-state probes before, during and after the faults",
        examples=[
            [{"name": "up", "http": "GET /health", "mode": "Continuous", "availability": 0.8}]
        ],
    )
    invariants: list[str] | None = Field(
        default=None,
        min_length=1,
        description="the invariants checked after the load (default: all)",
        examples=[["no-oversell"]],
    )
    rate: float = L.CHAOS_RATE.field(
        50.0, description="requests/s of the scenario during chaos", examples=[100]
    )
    duration: Duration = Field(
        default=30.0, description="how long the load (and so the chaos) lasts", examples=["1m"]
    )
    backend: Literal["local", "kubernetes"] = Field(
        default="local",
        description="local: the replicas heisen runs; kubernetes: the system heisen runs in "
        "namespace: (its agent brings the load and the faults there)",
        examples=["kubernetes"],
    )
    selector: dict[str, str] = Field(
        default_factory=dict,
        description="kubernetes backend: labels every pod chaos touches must carry (default: "
        "each experiment's service:, or its link:'s service)",
        examples=[{"app": "inventory"}],
    )


class Phases(Strict):
    """The phases to run: each runs when its section is here (and not enabled: false)."""

    predict: PredictSection | None = Field(
        default=None, description="where a race is most likely, and at what load", examples=[{}]
    )
    stress: StressSection | None = Field(
        default=None,
        description="does targeted contention reproduce it, and how often",
        examples=[{"trials": 10, "thresholds": ["p99 < 500ms"]}],
    )
    fuzz: FuzzSection | None = Field(
        default=None,
        description="which data shapes make it worse or crash the service",
        examples=[{"request": "checkout", "openapi": "openapi.yaml", "cases": 100}],
    )
    isolate: IsolateSection | None = Field(
        default=None,
        description="does widening the timing window amplify it",
        examples=[
            {
                "toxics": [
                    {"link": "inventory->redis", "type": "latency", "attributes": {"latency": 50}}
                ]
            }
        ],
    )
    contain: ContainSection | None = Field(
        default=None,
        description="does CPU throttling make it reliably observable",
        examples=[{"resources": {"inventory": {"cpu": "250m"}}}],
    )
    chaos: ChaosSection | None = Field(
        default=None,
        description="does the fix hold under kills and network faults",
        examples=[
            {"experiments": [{"name": "kill", "kind": "pod-delete", "service": "inventory"}]}
        ],
    )

    def section(self, name: PhaseName) -> PhaseSection | None:
        """The section of one phase, or None when the pipeline has none."""
        section: PhaseSection | None = getattr(self, name.value)
        return section
