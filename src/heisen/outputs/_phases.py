"""The outputs of the four phases that re-run the scenario: stress, isolate, contain, chaos."""

from __future__ import annotations

from pydantic import Field, JsonValue

from heisen.outputs._base import FindingRecord, JsonObject, Number, OutputModel
from heisen.outputs._escalation import Escalation
from heisen.outputs._load import (
    Amplification,
    InvariantVerdict,
    LoadFigures,
    ThresholdCheck,
    Throttled,
)


class StressTarget(OutputModel):
    """The predicted hotspot stress was pointed at (`target: hotspot` or `--hotspot N`)."""

    hotspot: int = 0
    boundary: str | None = None
    request: str = ""


class SweepStep(OutputModel):
    """One burst size: its trials, how many violated the target, and whether at least half did."""

    requests: int = 0
    trials: int = 0
    violations: int = 0
    reproduced: bool = False


class SmallestLoad(OutputModel):
    requests: int = 0
    violation_rate: Number = 0.0


class Sweep(OutputModel):
    """The burst sizes tried, and the smallest that reproduced the target (None: none up to
    `max` did, or, with `unmeasured`, a size tested nothing and the sweep stopped there).
    `target` is the invariant the sweep checked (None: all of them)."""

    target: str | None = None
    max: int | None = None
    tried: list[SweepStep] = Field(default_factory=list)
    smallest_reproducing_load: SmallestLoad | None = None
    unmeasured: str | None = None


class LinkLatency(OutputModel):
    """Round trips on one link during the trials, as its proxy measured them (ms)."""

    p50: Number = 0.0
    p90: Number = 0.0
    p99: Number = 0.0
    count: int = 0


class StressOutputs(LoadFigures):
    target: StressTarget | None = None
    link_latency_ms: dict[str, LinkLatency] = Field(default_factory=dict)
    sweep: Sweep | None = None
    thresholds: list[ThresholdCheck] = Field(default_factory=list)
    findings: list[FindingRecord] = Field(default_factory=list)


class AppliedToxic(OutputModel):
    """A toxic isolate put on a link, as it was sent to the link's proxy."""

    link: str = ""
    name: str = ""
    type: str = ""
    stream: str = ""
    toxicity: Number = 1.0
    attributes: JsonObject = Field(default_factory=dict)


class IsolateOutputs(LoadFigures):
    stubs: dict[str, str] = Field(default_factory=dict)
    toxics: list[AppliedToxic] = Field(default_factory=list)
    amplification: Amplification = Field(default_factory=Amplification)
    link_bytes: dict[str, int] = Field(default_factory=dict)
    toxic_delay_ms: dict[str, Number | None] = Field(default_factory=dict)
    stub_requests: dict[str, int] = Field(default_factory=dict)
    sweep: Sweep | None = None
    escalation: Escalation | None = None  # only when the section names no toxic
    findings: list[FindingRecord] = Field(default_factory=list)


class Limits(OutputModel):
    """`{cpu, memory}` in Kubernetes' spelling (`250m`, `256Mi`); None where not limited."""

    cpu: str | None = None
    memory: str | None = None


class ContainOutputs(LoadFigures):
    """`limits` is the first limited service's; `limits_by_service` holds them all."""

    throttled: Throttled = Field(default_factory=Throttled)
    sweep: Sweep | None = None
    enforcement: str | dict[str, str] = ""
    cpu_used_s: Number | None = None
    wall_s: Number | None = None
    warning: str | None = None
    namespace: str | None = None  # kubernetes backend
    cluster: str | None = None  # kubernetes backend
    limits_by_service: dict[str, Limits] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    amplification: Amplification = Field(default_factory=Amplification)
    thresholds: list[ThresholdCheck] = Field(default_factory=list)
    escalation: Escalation | None = None  # only when no service has a cpu limit
    findings: list[FindingRecord] = Field(default_factory=list)


class Injected(OutputModel):
    count: int = 0
    targets: list[str] = Field(default_factory=list)


class ExperimentOutcome(OutputModel):
    """One chaos experiment: what it injected and its LitmusChaos-style verdict."""

    name: str = ""
    kind: str = ""
    injected: Injected = Field(default_factory=Injected)
    verdict: str = ""
    requests_in_flight: int = 0
    error: str | None = None


class ProbeLine(OutputModel):
    name: str = ""
    mode: str = ""
    evaluations: int = 0
    failures: int = 0
    verdict: str = ""
    message: str = ""


class WindowState(OutputModel):
    verdict: str = ""
    probes: list[ProbeLine] = Field(default_factory=list)


class DataLoss(OutputModel):
    """Acknowledged writes against what the database holds, summed over the invariants."""

    acknowledged: int = 0
    persisted: int = 0
    lost: int = 0
    unknown: int = 0
    checked: bool = False
    lost_ids: list[JsonValue] = Field(default_factory=list)


class TimelineEntry(OutputModel):
    """`{t_s, event, detail}`; an entry may name its `experiment`."""

    t_s: Number = 0.0
    event: str = ""
    detail: str = ""
    experiment: str | None = None


class ChaosOutputs(LoadFigures):
    verdict: str = ""
    experiments: list[ExperimentOutcome] = Field(default_factory=list)
    steady_state: dict[str, WindowState] = Field(default_factory=dict)
    data_loss: DataLoss = Field(default_factory=DataLoss)
    invariants: list[InvariantVerdict] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    findings: list[FindingRecord] = Field(default_factory=list)
