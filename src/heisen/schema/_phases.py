"""One section per phase under `phases:` in pipeline.yaml."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from heisen._serialised import JsonObject
from heisen.schema import limits as L
from heisen.schema._system import Burst, Inject, LoadStep, Resources, SetupStep
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
    enabled: bool = True


class Observe(Strict):
    """How predict watches the running system: each request sent alone, `repeat` times."""

    repeat: int = L.OBSERVE_REPEAT.field(5)
    requests: list[str] | None = Field(
        default=None, description="the scenario requests to observe (default: all of them)"
    )


class PredictSection(PhaseSection):
    architecture: str | None = Field(
        default=None,
        description="a model of the operations to simulate; without it predict observes the "
        "running system's own traffic",
    )
    observe: Observe | None = None
    incidents: str | None = None
    agents: int = L.AGENTS.field(2000)
    cycles: int = L.CYCLES.field(2000)

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

    start: int = L.SWEEP_SIZE.field(2, description="first burst size")
    factor: float = L.SWEEP_FACTOR.field(2.0)
    max: int = L.SWEEP_SIZE.field(64)
    trials: int = L.SWEEP_TRIALS.field(5)
    request: str | None = Field(
        default=None,
        description="the request each burst sends (default: the load's burst: step's, "
        "or the scenario's only request)",
    )
    setup: list[SetupStep] | None = Field(
        default=None,
        description="the setup before each burst, instead of the scenario's (e.g. a capacity "
        "small enough for a burst of 2 to overrun)",
    )
    spread: Duration | None = Field(
        default=None,
        description="send a round's requests evenly over this long instead of at once: a "
        "ruler for the window, which then needs more than spread / window requests",
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

    rate_below: Annotated[float, share(0.001, 0.5)]
    level: Annotated[float, share(0.5, 0.9999)] = 0.95
    max_duration: Duration = 300.0


class TrialsSection(PhaseSection):
    trials: int = L.TRIALS.field(10)
    confidence: Confidence | None = None
    invariants: list[str] | None = Field(
        default=None,
        min_length=1,
        description="the invariants this phase checks (default: all); a load that cannot "
        "exercise the others leaves them out",
    )
    stop: Literal["first-violation", "all"] = "all"
    load: list[LoadStep] | None = None
    thresholds: list[Threshold] = Field(default_factory=list)
    workers: Annotated[int, L.WORKERS.field()] | Literal["auto"] = 1
    sweep: Sweep | None = Field(
        default=None,
        description="the smallest burst that reproduces the target (isolate and contain "
        "default to stress's sweep)",
    )


class StressSection(TrialsSection):
    target: Literal["scenario", "hotspot"] = "scenario"
    hotspot: int = L.HOTSPOT.field(1)


class FuzzField(Strict):
    type: Literal["integer", "number", "string", "boolean", "array", "object"]
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    enum: list[Any] | None = None
    nullable: bool = False
    required: bool = True


class FuzzSection(PhaseSection):
    request: str | None = None
    openapi: str | None = None
    operation: str | None = None
    fields: dict[str, FuzzField] | None = None
    cases: int = L.FUZZ_CASES.field(100)
    concurrency: int = L.CONCURRENCY.field(1)
    max_string_bytes: int = L.MAX_STRING_BYTES.field(65536)
    shrink: bool = True

    @model_validator(mode="after")
    def _a_schema(self) -> FuzzSection:
        if not self.fields and not self.openapi:
            raise ValueError(
                "fuzz needs a schema: fields: (declared here) or openapi: (a document)"
            )
        return self


class Toxic(Strict):
    link: str = Field(description="service->dependency, e.g. inventory->redis")
    type: Literal[
        "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
    ]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = L.FRACTION.field(1.0)
    attributes: JsonObject = Field(default_factory=dict)


class Escalation(Strict):
    """How long isolate (no `toxics:`) or contain (no `cpu:`) may search for a condition that
    reproduces the race before the phase's own trials."""

    budget: Duration = Field(
        default=60.0, description="wall time the search may take; it stops and says so after"
    )


class IsolateSection(TrialsSection):
    stubs: list[str] = Field(
        default_factory=list, description="dependencies replaced by their stub: root"
    )
    toxics: list[Toxic] = Field(default_factory=list)
    escalation: Escalation = Field(
        default_factory=Escalation,
        description="with no toxics: latency tried on each link at 1, 10, 100, 500 ms",
    )


class ContainSection(TrialsSection):
    backend: Literal["local", "kubernetes"] = "local"
    strict: bool = False
    resources: dict[str, Resources] = Field(default_factory=dict)
    namespace: str = "heisen"
    kubeconfig: str | None = None
    context: str | None = None
    escalation: Escalation = Field(
        default_factory=Escalation,
        description="with no cpu: limit, 500m, 250m and 100m tried on each service",
    )


class Experiment(Strict):
    name: str
    kind: Literal[
        "pod-delete",
        "container-kill",
        "pod-network-latency",
        "pod-network-loss",
        "reset-peer",
        "partition",
        "pod-cpu-hog",
        "dependency-restart",
    ]
    service: str | None = None
    link: str | None = None
    dependency: str | None = None
    count: int = L.EXPERIMENT_COUNT.field(1)
    interval: Duration | None = None
    duration: Duration = 10.0
    start: Offset = 0.0
    percentage: int = L.PERCENTAGE.field(100)
    force: bool = True
    grace: Offset = 0.0
    sequence: Literal["serial", "parallel"] = "serial"
    attributes: JsonObject = Field(default_factory=dict)
    cores: int = L.CORES.field(1)


class Probe(Strict):
    name: str
    invariant: str | None = None
    http: str | None = Field(default=None, description="METHOD /path on the target service")
    mode: Literal["SOT", "EOT", "Continuous", "OnChaos", "Edge"] = "Edge"
    interval: Duration = 1.0
    availability: float | None = L.FRACTION.field(None)
    latency_p99: Duration | None = None
    tolerance: float = L.FRACTION.field(0.0)


class ChaosSection(PhaseSection):
    experiments: list[Experiment]
    probes: list[Probe] = Field(default_factory=list)
    invariants: list[str] | None = Field(
        default=None,
        min_length=1,
        description="the invariants checked after the load (default: all)",
    )
    rate: float = L.CHAOS_RATE.field(50.0, description="requests/s of the scenario during chaos")
    duration: Duration = 30.0
    backend: Literal["local", "kubernetes"] = "local"
    namespace: str = "heisen"
    selector: dict[str, str] = Field(default_factory=dict)


class Phases(Strict):
    predict: PredictSection | None = None
    stress: StressSection | None = None
    fuzz: FuzzSection | None = None
    isolate: IsolateSection | None = None
    contain: ContainSection | None = None
    chaos: ChaosSection | None = None

    def section(self, name: PhaseName) -> PhaseSection | None:
        """The section of one phase, or None when the pipeline has none."""
        section: PhaseSection | None = getattr(self, name.value)
        return section
