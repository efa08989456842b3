"""The volatility score, and the ranking of anomaly sites into hotspots.

    score = 100 * (0.50 * rate + 0.20 * sensitivity + 0.10 * dispersion + 0.20 * prior)

* `rate`: the predicted violation rate per cycle at the configured load (0..1).
* `sensitivity`: how much the rate moves when conditions change by a factor
  of four: the mean of |rate(burst x2) - rate(burst x0.5)| and
  |rate(latency x2) - rate(latency x0.5)| (0..1). Volatile boundaries are the
  ones whose behaviour flips with load or latency.
* `dispersion`: the coefficient of variation of the race window (read to act,
  source-of-truth write to cache update, lock hold), capped at 1; counted only
  when the anomaly was reproduced at some point of the sensitivity grid, since
  jitter cannot create a race the design does not have.
* `prior`: `1 - exp(-w)`, with `w` the sum over past incidents on the
  boundary (and anomaly, when the incident names one) of
  `count * severity / 5 * 0.5 ** (age / 90 days)`.

Every term lies in 0..1, so the score lies in 0..100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from heisen import outputs
from heisen.predict._model import Anomaly, Incident

SCORE_FORMULA = (
    "score = 100 * (0.50*rate + 0.20*sensitivity + 0.10*dispersion + 0.20*prior); "
    "sensitivity = mean(|rate(burst x2) - rate(burst x0.5)|, |rate(latency x2) - rate(latency x0.5)|); "
    "dispersion = min(1, CV of the race window), 0 if never reproduced; "
    "prior = 1 - exp(-sum(count * severity/5 * 0.5**(age/90d)))"
)
WEIGHTS = {"rate": 0.50, "sensitivity": 0.20, "dispersion": 0.10, "prior": 0.20}
HALF_LIFE_S = 90 * 86400.0
Z95 = 1.959963984540054
FACTORS = (0.5, 1.0, 2.0)


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def incident_weight(incidents: Iterable[Incident], boundary: str, anomaly: Anomaly) -> float:
    """The decayed, severity-weighted count of past incidents that match this boundary and anomaly."""
    total = 0.0
    for incident in incidents:
        if incident.boundary != boundary:
            continue
        if incident.anomaly is not None and incident.anomaly is not anomaly:
            continue
        total += incident.count * incident.severity / 5 * 0.5 ** (incident.age_s / HALF_LIFE_S)
    return total


def prior(incidents: Iterable[Incident], boundary: str, anomaly: Anomaly) -> float:
    return 1.0 - math.exp(-incident_weight(incidents, boundary, anomaly))


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """Violation rates at x0.5, x1 and x2 of the burst size and of every step's I/O latency."""

    burst: Mapping[float, float]
    latency: Mapping[float, float]

    def index(self) -> float:
        burst = abs(self.burst[2.0] - self.burst[0.5])
        latency = abs(self.latency[2.0] - self.latency[0.5])
        return (burst + latency) / 2

    def reproduced(self) -> bool:
        return any(rate > 0 for rate in (*self.burst.values(), *self.latency.values()))

    def to_output(self) -> outputs.Sensitivity:
        return outputs.Sensitivity(
            burst={f"x{factor:g}": round(rate, 6) for factor, rate in self.burst.items()},
            latency={f"x{factor:g}": round(rate, 6) for factor, rate in self.latency.items()},
        )


def volatility(rate: float, sensitivity: float, dispersion: float, prior_term: float) -> float:
    terms = {
        "rate": rate,
        "sensitivity": sensitivity,
        "dispersion": min(dispersion, 1.0),
        "prior": prior_term,
    }
    return 100.0 * sum(WEIGHTS[name] * min(max(value, 0.0), 1.0) for name, value in terms.items())


@dataclass(frozen=True, slots=True)
class Hotspot:
    """One ranked place where a race is predicted; `to_output()` is how the manifest records it.

    `allowed_successes` (check-then-act with a limit) and `mean_wait_ms` (lock-timeout) are
    recorded only for those anomalies.
    """

    boundary: str
    service: str
    resource: str
    anomaly: Anomaly
    key: str
    operation: str
    endpoint: outputs.Endpoint | None
    score: float
    predicted_violation_rate: float
    ci95: tuple[float, float]
    violations: int
    cycles: int
    load: outputs.PredictedLoad
    sensitivity: Sensitivity
    dispersion: float
    prior: float
    window_ms: float
    allowed_successes: int | None = None
    mean_wait_ms: float | None = None

    def to_output(self) -> outputs.Hotspot:
        hotspot = outputs.Hotspot(
            boundary=self.boundary,
            service=self.service,
            resource=self.resource,
            anomaly=self.anomaly.value,
            score=round(self.score, 2),
            predicted_violation_rate=round(self.predicted_violation_rate, 6),
            ci95=(round(self.ci95[0], 6), round(self.ci95[1], 6)),
            load=self.load.model_copy(),
            operation=self.operation,
            endpoint=None if self.endpoint is None else self.endpoint.model_copy(),
            key=self.key,
            sensitivity=self.sensitivity.to_output(),
            terms=outputs.ScoreTerms(
                rate=round(self.predicted_violation_rate, 6),
                sensitivity=round(self.sensitivity.index(), 6),
                dispersion=round(self.dispersion, 6),
                prior=round(self.prior, 6),
            ),
            window_ms=round(self.window_ms, 4),
            violations=self.violations,
            cycles=self.cycles,
        )
        if self.allowed_successes is not None:
            hotspot.allowed_successes = self.allowed_successes
        if self.mean_wait_ms is not None:
            hotspot.mean_wait_ms = self.mean_wait_ms
        return hotspot


def rank(hotspots: Iterable[Hotspot]) -> tuple[Hotspot, ...]:
    """Highest score first; ties broken by rate, then by name, so the order is stable."""
    return tuple(
        sorted(
            hotspots,
            key=lambda h: (
                -round(h.score, 9),
                -h.predicted_violation_rate,
                h.boundary,
                h.anomaly.value,
                h.operation,
                h.key,
            ),
        )
    )
