"""Oracles: how heisen knows a race happened.

* invariants: probes (:mod:`heisen.oracle.probes`: sql, redis, http, python)
  whose result is judged by a safe ``expect:`` expression
  (:mod:`heisen.oracle.expr`);
* histories (:mod:`heisen.oracle.history`) checked against a model
  (:mod:`heisen.oracle.checkers`: linearizability per key, counter, set);
* one :class:`Verdict` per invariant judged, kept typed up to the manifest.

Drivers (psycopg, redis, httpx) are imported only inside the probe functions.
"""

from __future__ import annotations

from heisen.oracle._verdict import Verdict
from heisen.oracle.checkers import (
    CheckResult,
    CheckStats,
    Model,
    Violation,
    check,
    render_timeline,
    timeline_data,
)
from heisen.oracle.expr import Expression, ExpressionError, parse_expression
from heisen.oracle.history import (
    Call,
    HistoryError,
    HistoryWriter,
    Operation,
    OpType,
    pair_calls,
    read_history,
)
from heisen.oracle.probes import (
    ProbeError,
    check_python_ref,
    http_probe,
    python_probe,
    redis_probe,
    run_setup_redis,
    run_setup_sql,
    sql_probe,
)

__all__ = [
    "Call",
    "CheckResult",
    "CheckStats",
    "Expression",
    "ExpressionError",
    "HistoryError",
    "HistoryWriter",
    "Model",
    "OpType",
    "Operation",
    "ProbeError",
    "Verdict",
    "Violation",
    "check",
    "check_python_ref",
    "http_probe",
    "pair_calls",
    "parse_expression",
    "python_probe",
    "read_history",
    "redis_probe",
    "render_timeline",
    "run_setup_redis",
    "run_setup_sql",
    "sql_probe",
    "timeline_data",
]
