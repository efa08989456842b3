"""The outputs of predict: ranked hotspots, where stress should start, and the calibration."""

from __future__ import annotations

from pydantic import Field

from heisen.outputs._base import FindingRecord, JsonObject, Number, OutputModel


class PredictedLoad(OutputModel):
    """A burst of `requests` arriving within `window_ms`, split over the operations."""

    requests: int = 0
    window_ms: Number = 0.0
    per_operation: dict[str, int] = Field(default_factory=dict)


class Endpoint(OutputModel):
    method: str = ""
    path: str = ""
    body: JsonObject | None = None


class Sensitivity(OutputModel):
    """The rate at x0.5, x1 and x2 the burst size and the latencies."""

    burst: dict[str, Number] = Field(default_factory=dict)
    latency: dict[str, Number] = Field(default_factory=dict)


class ScoreTerms(OutputModel):
    rate: Number = 0.0
    sensitivity: Number = 0.0
    dispersion: Number = 0.0
    prior: Number = 0.0


class WindowSpread(OutputModel):
    """The observed race windows of a hotspot, in ms."""

    median: Number = 0.0
    p90: Number = 0.0
    max: Number = 0.0
    samples: int = 0


class ObservedRequest(OutputModel):
    """One scenario request as the observation pass sent it."""

    request: str = ""
    endpoint: Endpoint | None = None
    sends: int = 0
    replicas: list[int] = Field(default_factory=list)
    operations: dict[str, int] = Field(default_factory=dict)
    """Dependency operations per send, median, by link."""
    latency_ms: Number = 0.0


class Observed(OutputModel):
    """What observe mode read: the links, the requests, the operations nobody sent."""

    links: dict[str, str] = Field(default_factory=dict)
    requests: list[ObservedRequest] = Field(default_factory=list)
    background: int = 0
    tap_lost: dict[str, int] = Field(default_factory=dict)
    """Connections a tap stopped reading, by reason: traffic the candidates could not see."""
    elapsed_s: Number = 0.0


class Hotspot(OutputModel):
    """One ranked place where a race is predicted (`heisen.predict`'s `Hotspot.as_dict`)."""

    boundary: str = ""
    service: str = ""
    resource: str = ""
    anomaly: str = ""
    score: Number = 0.0
    predicted_violation_rate: Number = 0.0
    ci95: tuple[Number, Number] = (0.0, 1.0)
    load: PredictedLoad = Field(default_factory=PredictedLoad)
    operation: str = ""
    endpoint: Endpoint | None = None
    key: str = ""
    sensitivity: Sensitivity = Field(default_factory=Sensitivity)
    terms: ScoreTerms = Field(default_factory=ScoreTerms)
    window_ms: Number = 0.0
    violations: int = 0
    cycles: int = 0
    allowed_successes: int | None = None  # check-then-act with a limit
    mean_wait_ms: Number | None = None  # lock-timeout
    # observe mode: what the traffic showed
    request: str = ""
    table: str = ""
    pair: str = ""
    window_spread_ms: WindowSpread | None = None
    evidence: list[str] = Field(default_factory=list)
    seen: str = ""
    """In how many of the observed sends the pattern showed (`4/5`)."""
    smallest_reproducing_burst: int | None = None
    burst_rates: dict[str, Number] = Field(default_factory=dict)
    """Observe mode: the predicted hit rate at each burst size of the ruler (`{"8": 0.4}`)."""
    protected: str = ""
    """What guards the pattern (`the lock lock:event:concert`); in `protected:` only."""


class SmallestPredictedLoad(PredictedLoad):
    """The smallest burst at which the top hotspot is predicted in enough cycles."""

    anomaly: str = ""
    boundary: str = ""
    operation: str = ""
    predicted_violation_rate: Number = 0.0
    cycles: int = 0


class CalibrationPoint(OutputModel):
    """Predicted and observed rates of the target at one load that ran: the main load of a phase
    (`source: stress`) or one burst size of its sweep (`source: sweep`).

    `ratio` is predicted / observed (None when either is 0); `within_2x` says whether this
    point agrees (see `heisen.predict._calibration` for how zeros are judged)."""

    phase: str = ""
    load: int = 0
    predicted: Number = 0.0
    observed: Number = 0.0
    ratio: Number | None = None
    source: str | None = None
    trials: int | None = None
    violations: int | None = None
    within_2x: bool | None = None


class SmallestBurst(OutputModel):
    """The smallest burst of the sweep's sizes that reproduces the target in at least half of
    its trials, by the model and by the sweep (None: no size up to the sweep's max)."""

    predicted: int | None = None
    observed: int | None = None
    within_one_step: bool = False
    sizes: list[int] = Field(default_factory=list)


class FittedModel(OutputModel):
    """What calibration set in the model: the operation's step medians (ms) and the burst's
    arrival window at the main load (ms)."""

    operation: str = ""
    steps_ms: dict[str, Number] = Field(default_factory=dict)
    latency_ms: Number | None = None
    passed_check: Number | None = None
    arrival_window_ms: Number | None = None
    release_spread_ms: Number | None = None
    links_ms: dict[str, dict[str, Number]] = Field(default_factory=dict)
    """Boundaries fitted from their link's round trips (`{p50, p90, p99}`, ms), if any."""
    unattributed_ms: Number | None = None
    """Measured time no step took: every I/O step was fitted from its link (ms)."""


class Calibration(OutputModel):
    """predict calibrated on a run. The current shape is `{run, target, points, ratio,
    within_2x, smallest_reproducing_burst, model, reason}`; manifests written before it hold
    `{run, latency_scale, compared}` and still parse (new keys are None there)."""

    run: str = ""
    target: str | None = None
    points: list[CalibrationPoint] | None = None
    ratio: Number | None = None
    within_2x: bool | None = None
    smallest_reproducing_burst: SmallestBurst | None = None
    model: FittedModel | None = None
    reason: str | None = None
    latency_scale: Number = 1.0
    compared: list[CalibrationPoint] = Field(default_factory=list)


class PredictOutputs(OutputModel):
    mode: str = "model"
    """`model` (an architecture simulated) or `observe` (the running system's traffic read)."""
    hotspots: list[Hotspot] = Field(default_factory=list)
    protected: list[Hotspot] = Field(default_factory=list)
    observed: Observed | None = None
    smallest_reproducing_load: SmallestPredictedLoad | None = None
    load: PredictedLoad = Field(default_factory=PredictedLoad)
    agents: int = 0
    cycles: int = 0
    seed: int = 0
    reproduce_threshold: Number = 0.5
    score_formula: str = ""
    elapsed_s: Number = 0.0
    calibration: Calibration | None = None
    findings: list[FindingRecord] = Field(default_factory=list)
