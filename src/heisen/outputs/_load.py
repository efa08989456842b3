"""The figures every load-bearing phase reports (stress, isolate, contain, chaos).

`LoadFigures` is the manifest contract's common part: `trials, violations,
violation_rate, ci95, requests, rps, latency_ms, status_codes, errors`,
`bound` when `confidence:` is set, and what the trial engine adds to judge a
run (overlap, outcomes, per trial, per invariant). `Amplification` and
`ThresholdCheck` are how phases compare themselves with stress and with the
section's thresholds.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from heisen.outputs._base import JsonObject, Number, OutputModel


class RateFigures(OutputModel):
    """How often the trials violated an invariant, with the Wilson 95% interval."""

    trials: int = 0
    violations: int = 0
    violation_rate: Number = 0.0
    ci95: tuple[Number, Number] = (0.0, 1.0)


class PerOperationRate(OutputModel):
    """An invariant's `severity:` over a phase's trials: the mean per-trial value, its Student-t
    95% interval (None below 2 trials) and how many trials it is over."""

    mean: Number | None = None
    ci95: tuple[Number, Number] | None = None
    trials: int = 0


class InvariantFigures(RateFigures):
    """One invariant's own rate in `per_invariant`, and its `severity:` when it declares one."""

    per_operation_rate: PerOperationRate | None = None


class Latency(OutputModel):
    """Latency percentiles in milliseconds."""

    p50: Number = 0.0
    p75: Number = 0.0
    p90: Number = 0.0
    p95: Number = 0.0
    p99: Number = 0.0
    p99_9: Number = Field(
        default=0.0, validation_alias=AliasChoices("p99.9", "p99_9"), serialization_alias="p99.9"
    )
    max: Number = 0.0


class Bound(OutputModel):
    """`confidence:` as proven (or not): `upper` is None once a violation was found."""

    rate_below: Number = 0.0
    level: Number = 0.0
    trials: int = 0
    needed: int = 0
    upper: Number | None = None
    proven: bool = False


class Spread(OutputModel):
    """How far apart a burst's requests were released (ms)."""

    median: Number = 0.0
    max: Number = 0.0


class BurstSpread(OutputModel):
    """Release spreads over every burst of a phase (ms)."""

    median: Number = 0.0
    p90: Number = 0.0
    max: Number = 0.0


class BurstLine(OutputModel):
    """One burst of one trial: `step` is its index in the load (from 0)."""

    trial: int = 0
    step: int = 0
    protocol: str = ""
    requests: int = 0
    connections: int = 0
    release_spread_ms: Number = 0.0


class Bursts(OutputModel):
    """Every burst of a phase's trials: how many, over which protocol (and why: `reasons`,
    one line per distinct decision), how tightly released, and each one in `per_burst`."""

    count: int = 0
    protocols: dict[str, int] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    release_spread_ms: BurstSpread = Field(default_factory=BurstSpread)
    per_burst: list[BurstLine] = Field(default_factory=list)


class Overlap(OutputModel):
    min_in_flight: int = 0
    trials_without_overlap: list[int] = Field(default_factory=list)


class Outcomes(OutputModel):
    """Requests by outcome (see `heisen.stress`'s load facts) and the unknown share allowed."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    info: int = 0
    queued: int = 0
    info_allowed: Number = 0.05


class Undecided(OutputModel):
    """An invariant that could not decide a trial (a history with nothing to check)."""

    trial: int = 0
    invariant: str = ""
    message: str = ""


class TrialError(OutputModel):
    """The invariant (or setup) that could not be evaluated and stopped the trials."""

    trial: int = 0
    invariant: str = ""
    kind: str = ""
    message: str = ""


class Throttled(OutputModel):
    """CFS throttling counters (None where they could not be read, e.g. inside pods)."""

    periods: int | None = None
    throttled_periods: int | None = None
    throttled_s: Number | None = None


class TrialLine(OutputModel):
    """One item of `per_trial`."""

    trial: int = 0
    violated: bool = False
    requests: int | None = None
    p99_ms: Number | None = None
    in_flight_max: int = 0
    violations: list[str] = Field(default_factory=list)
    throttled: Throttled | None = None  # contain only


class LoadFigures(RateFigures):
    """The shared figures of a run of trials; see the module docstring."""

    requests: int = 0
    duration_s: Number = 0.0
    rps: Number = 0.0
    latency_ms: Latency = Field(default_factory=Latency)
    latency_uncorrected_ms: Latency = Field(default_factory=Latency)
    status_codes: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    trials_per_s: Number | None = None
    bound: Bound | None = None
    release_spread_ms: Spread | None = None
    bursts: Bursts | None = None
    overlap: Overlap = Field(default_factory=Overlap)
    outcomes: Outcomes = Field(default_factory=Outcomes)
    undecided: list[Undecided] = Field(default_factory=list)
    per_trial: list[TrialLine] = Field(default_factory=list)
    per_invariant: dict[str, InvariantFigures] = Field(default_factory=dict)
    trial_errors: list[TrialError] = Field(default_factory=list)


class P99Comparison(OutputModel):
    baseline: Number | None = None
    contain: Number | None = None


class Amplification(OutputModel):
    """A phase's violation rate against stress's (`factor` None when stress saw none)."""

    baseline: Number | None = None
    rate: Number | None = None
    factor: Number | None = None
    p99_ms: P99Comparison | None = None  # contain only


class ThresholdCheck(OutputModel):
    """One of the section's `thresholds:`, held or breached (stress also gives the value)."""

    threshold: str = ""
    held: bool = True
    observed: Number | None = None


class InvariantVerdict(OutputModel):
    """An invariant's verdict as the manifest records it (`held` None: undecided)."""

    name: str = ""
    held: bool | None = None
    message: str = ""
    value: JsonObject = Field(default_factory=dict)
    fault: str | None = None
