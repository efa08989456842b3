"""One section per phase under `phases:` in pipeline.yaml."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from heisen._schema._system import LoadStep, Resources
from heisen._schema._types import Duration, Strict


class PhaseSection(Strict):
    enabled: bool = True


class PredictSection(PhaseSection):
    architecture: str
    incidents: str | None = None
    agents: int = Field(default=2000, ge=1, le=1_000_000)
    cycles: int = Field(default=2000, ge=1, le=1_000_000)


class Sweep(Strict):
    start: int | None = Field(
        default=None, ge=1, description="first burst size; default: predict's smallest load"
    )
    factor: float = Field(default=2.0, gt=1.0)
    max: int = Field(default=1000, ge=1)
    trials: int = Field(default=5, ge=1, le=1000)


class TrialsSection(PhaseSection):
    trials: int = Field(default=10, ge=1, le=10_000)
    stop: Literal["first-violation", "all"] = "all"
    load: list[LoadStep] | None = None
    thresholds: list[str] = Field(default_factory=list)
    workers: int | Literal["auto"] = 1


class StressSection(TrialsSection):
    target: Literal["scenario", "hotspot"] = "scenario"
    hotspot: int = Field(default=1, ge=1)
    sweep: Sweep | None = None


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
    cases: int = Field(default=100, ge=1, le=100_000)
    concurrency: int = Field(default=1, ge=1, le=1000)
    max_string_bytes: int = Field(default=65536, ge=1, le=64 * 1024 * 1024)
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
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0)
    attributes: dict[str, Any] = Field(default_factory=dict)


class IsolateSection(TrialsSection):
    stubs: list[str] = Field(
        default_factory=list, description="dependencies replaced by their stub: root"
    )
    toxics: list[Toxic] = Field(default_factory=list)


class ContainSection(TrialsSection):
    backend: Literal["local", "kubernetes"] = "local"
    strict: bool = False
    resources: dict[str, Resources] = Field(default_factory=dict)
    namespace: str = "heisen"
    kubeconfig: str | None = None
    context: str | None = None


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
    count: int = Field(default=1, ge=1, le=1000)
    interval: Duration | None = None
    duration: Duration = 10.0
    start: Duration = 0.0
    percentage: int = Field(default=100, ge=1, le=100)
    force: bool = True
    grace: Duration = 0.0
    sequence: Literal["serial", "parallel"] = "serial"
    attributes: dict[str, Any] = Field(default_factory=dict)
    cores: int = Field(default=1, ge=1, le=64)


class Probe(Strict):
    name: str
    invariant: str | None = None
    http: str | None = Field(default=None, description="METHOD /path on the target service")
    mode: Literal["SOT", "EOT", "Continuous", "OnChaos", "Edge"] = "Edge"
    interval: Duration = 1.0
    availability: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_p99: Duration | None = None
    tolerance: float = Field(default=0.0, ge=0.0, le=1.0)


class ChaosSection(PhaseSection):
    experiments: list[Experiment]
    probes: list[Probe] = Field(default_factory=list)
    rate: float = Field(
        default=50.0, gt=0, le=100_000, description="requests/s of the scenario during chaos"
    )
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
