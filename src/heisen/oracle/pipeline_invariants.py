"""A pipeline's setup steps and invariants, run against a running system.

Probe kinds (`sql`, `redis`, `http`, `python`) are evaluated here, with
`expect:` over what the probe returned. The two kinds that need what the
load did (`history`, `acknowledged`) are given the trial's records by the
caller (the scenario engine) and checked here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from heisen._serialised import JsonObject
from heisen.oracle import probes
from heisen.oracle._verdict import Verdict
from heisen.oracle.expr import ExpressionError, parse_expression
from heisen.schema import DependencyKind, HttpCall, Invariant, Pipeline, SetupStep
from heisen.system_protocol import System

__all__ = [
    "ProbeContext",
    "Verdict",
    "WritesLost",
    "check_acknowledged",
    "evaluate_probe",
    "is_probe",
    "probe_context",
    "probe_values",
    "run_setup",
]


class ProbeContext(TypedDict):
    """What a `python:` probe may take as keyword arguments (see `PYTHON_PROBE_KWARGS`)."""

    trial: int
    seed: int
    run_dir: str
    deps: dict[str, str]
    services: dict[str, str]


def probe_context(trial: int, seed: int, run_dir: Path) -> ProbeContext:
    """The context of trial `trial`'s `python:` probes."""
    return {"trial": trial, "seed": seed, "run_dir": str(run_dir), "deps": {}, "services": {}}


def run_setup(pipeline: Pipeline, system: System, steps: Iterable[SetupStep] | None = None) -> None:
    """Each setup step in order; a failing one raises ProbeError naming it."""
    for index, step in enumerate(pipeline.scenario.setup if steps is None else steps):
        where = f"scenario.setup[{index}]"
        if step.http is not None:
            result = _http(pipeline, system, step.http)
            allowed = step.http.expect_status or list(range(200, 400))
            if result["status"] not in allowed:
                raise probes.ProbeError(
                    f"{where}: {step.http.method} {step.http.path} answered {result['status']}"
                )
        elif step.sql is not None:
            probes.run_setup_sql(
                system.dependency_of_kind(DependencyKind.POSTGRES, step.on), step.sql
            )
        elif step.redis is not None:
            probes.run_setup_redis(
                system.dependency_of_kind(DependencyKind.REDIS, step.on), step.redis
            )


def _http(pipeline: Pipeline, system: System, call: HttpCall) -> JsonObject:
    from heisen.system import service_tls

    name = pipeline.target_service(call)
    base_dir = getattr(getattr(system, "loaded", None), "base_dir", None) or Path.cwd()
    return probes.http_probe(
        system.service_url(name),
        call.method,
        call.path,
        json_body=call.json_body,
        headers=call.headers or None,
        tls=service_tls(pipeline, name, base_dir),
    )


def probe_values(
    pipeline: Pipeline, system: System, invariant: Invariant, context: Mapping[str, Any]
) -> JsonObject:
    if invariant.sql is not None:
        return probes.sql_probe(
            system.dependency_of_kind(DependencyKind.POSTGRES, invariant.on), invariant.sql
        )
    if invariant.redis is not None:
        return probes.redis_probe(
            system.dependency_of_kind(DependencyKind.REDIS, invariant.on), invariant.redis
        )
    if invariant.http is not None:
        return _http(pipeline, system, invariant.http)
    if invariant.python is not None:
        base_dir = getattr(getattr(system, "loaded", None), "base_dir", None)
        return probes.python_probe(
            invariant.python, context, base_dir=base_dir, timeout_s=invariant.timeout
        )
    raise AssertionError(f"{invariant.name} is not a probe invariant")


def is_probe(invariant: Invariant) -> bool:
    return any(getattr(invariant, kind) is not None for kind in ("sql", "redis", "http", "python"))


def evaluate_probe(
    pipeline: Pipeline,
    system: System,
    invariant: Invariant,
    context: Mapping[str, Any],
    load: Mapping[str, Any] | None = None,
) -> Verdict:
    """Run the invariant's probe and judge `expect:` over its values (and `load`, the trial's).

    A probe that cannot run or an expression that cannot be evaluated is an
    error verdict, never held: see `Verdict`. `severity:` is evaluated over the
    same values when the invariant is violated after a load (`load` given: a
    trial of the load engine); a race that did not hit has no severity, and
    fuzz's and chaos's probes, which have no `load.*`, ask for none.
    """
    assert invariant.expect is not None
    try:
        values = probe_values(pipeline, system, invariant, context)
    except probes.ProbeError as exc:
        return Verdict.error(invariant.name, exc.fault, f"probe failed: {exc}")
    if load is not None:
        values = {"load": dict(load), **values}
    try:
        result, evidence = parse_expression(invariant.expect).evaluate_with_evidence(values)
    except ExpressionError as exc:
        return Verdict.error(invariant.name, "pipeline", f"expect: {exc}", _shown(values))
    if not isinstance(result, bool):
        return Verdict.error(
            invariant.name,
            "pipeline",
            f"expect: {invariant.expect} gave {result!r} ({type(result).__name__}), not true or false",
            evidence,
        )
    severity: float | None = None
    if invariant.severity is not None and not result and load is not None:
        try:
            severity = _severity(invariant.severity, values)
        except ExpressionError as exc:
            return Verdict.error(invariant.name, "pipeline", f"severity: {exc}", evidence)
    detail = ", ".join(f"{k}={v!r}" for k, v in evidence.items())
    message = (
        f"{invariant.expect}"
        + (" held" if result else " violated")
        + (f" ({detail})" if detail else "")
    )
    return Verdict(invariant.name, result, message, evidence, severity=severity)


def _severity(text: str, values: Mapping[str, Any]) -> float:
    """`severity:` over the values `expect:` read; a number, or `ExpressionError` saying why not."""
    result = parse_expression(text).evaluate(values)
    if isinstance(result, bool) or not isinstance(result, int | float) or not math.isfinite(result):
        raise ExpressionError(f"{text} gave {result!r}, not a finite number")
    return float(result)


def _shown(values: Mapping[str, Any]) -> JsonObject:
    return {
        k: v
        for k, v in values.items()
        if k not in ("rows", "headers", "load") and not isinstance(v, dict | list)
    }


@dataclass(frozen=True, slots=True)
class WritesLost:
    """Acknowledged writes against what the database holds (an `acknowledged:` invariant).

    `unknown`: requests whose outcome is unknown (failed or 5xx): they may or may
    not have taken effect, so they are never counted lost. `lost_ids`: the first
    20 ids acknowledged but not found.
    """

    acknowledged: int
    persisted: int
    lost: int
    unknown: int
    lost_ids: list[Any] = field(default_factory=list)

    @property
    def message(self) -> str:
        return (
            f"{self.acknowledged} acknowledged, {self.persisted} persisted, {self.lost} lost, "
            f"{self.unknown} unknown"
        )

    def to_dict(self) -> JsonObject:
        return {
            "acknowledged": self.acknowledged,
            "persisted": self.persisted,
            "lost": self.lost,
            "unknown": self.unknown,
            "lost_ids": list(self.lost_ids),
        }


def check_acknowledged(dsn: str, sql: str, acknowledged: list[Any], unknown: int) -> WritesLost:
    """Which acknowledged ids the database holds, and which it lost."""
    if not acknowledged:
        return WritesLost(0, 0, 0, unknown)
    rows = probes.sql_probe(dsn, sql, params={"ids": list(acknowledged)})["rows"]
    present = {str(next(iter(row.values()))) for row in rows}
    lost = [value for value in acknowledged if str(value) not in present]
    return WritesLost(
        len(acknowledged), len(acknowledged) - len(lost), len(lost), unknown, lost[:20]
    )
