"""JUnit XML for CI: a testsuite per phase, a testcase per invariant (and per fuzz failure).

``fuzz`` gets one testcase per distinct failure, named by what was sent and what came back
(``fuzz: qty: 2147483648 (int32 max + 1) → 500``; `_fuzz_cases`). A breached threshold is
one failing testcase (the finding the phase adds for it says the same). A phase that did
not run (skipped, pending) is one ``<skipped>`` testcase named after the phase.

Each load-bearing phase (stress, isolate, contain, chaos) gets one testcase per
invariant of the pipeline (plus any the findings or trial errors name): passed,
a ``<failure>`` carrying the message, the compared values (evidence), the
violating trials and the replay command, or an ``<error>`` when the invariant
could not be evaluated (``outputs.trial_errors``: which trial, whether the
pipeline or the environment is at fault, the message) — never a pass.
Thresholds become testcases too; ``predict`` one testcase for the phase. An
inconclusive phase marks its passing testcases
``<skipped message="inconclusive: <reason>">`` (they proved nothing); a phase
that errored without naming the invariant at fault marks them ``<error>``. A
phase's confidence bound is its ``bound`` property, in words.
Text is cleaned of the control characters XML 1.0 forbids, so the file always
parses.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heisen._serialised import JsonObject
from heisen.manifest import PhaseRecord, RunManifest, write_atomically
from heisen.outputs import FindingRecord, TrialLine
from heisen.report._facts import (
    TrialError,
    bound_of,
    evidence_line,
    inconclusive_reason,
    trial_errors,
)
from heisen.report._fuzz_cases import fuzz_failures
from heisen.schema import LOAD_PHASES

__all__ = ["FILE_NAME", "render", "write"]

FILE_NAME = "junit.xml"
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: Any) -> str:
    """``text`` as a string XML 1.0 can hold: forbidden characters become ``\\xNN``/``\\uNNNN``."""
    return _FORBIDDEN.sub(lambda m: _code(ord(m.group())), str(text))


def _code(point: int) -> str:
    return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"


@dataclass(frozen=True, slots=True)
class Case:
    """One testcase: ``outcome`` is passed, failure, error or skipped."""

    name: str
    outcome: str = "passed"
    message: str = ""
    detail: str = ""
    kind: str = ""


def write(manifest: RunManifest, run_dir: Path) -> Path:
    """Write ``junit.xml`` into the run dir; the path relative to it."""
    write_atomically(Path(run_dir) / FILE_NAME, render(manifest))
    return Path(FILE_NAME)


def render(manifest: RunManifest) -> str:
    root = ET.Element("testsuites", name=clean(f"heisen run {manifest.run.id}"))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for name, record in manifest.phases.items():
        cases = phase_cases(manifest, name, record)
        suite = _suite(root, manifest, name, record, cases)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        total_time += record.duration_s or 0.0
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def phase_cases(manifest: RunManifest, phase: str, record: PhaseRecord) -> list[Case]:
    """The testcases of one phase, before its status (skipped, error) is applied.

    A phase that did not run (skipped, pending) is one testcase named after it:
    its invariants were not tested, so no testcase bears their names.
    """
    outputs = record.outputs or {}
    if str(record.status) in _NOT_RUN:
        return [Case(phase)]
    if phase == "fuzz":
        failures = [
            Case(f.name, "failure", f.message, f.detail, "FuzzFailure")
            for f in fuzz_failures(outputs)
        ]
        return failures or [Case(f"{outputs.get('cases', 0)} cases")]
    if phase not in LOAD_PHASES:
        return [Case(phase)]
    findings = {
        finding.name: finding
        for finding in map(FindingRecord.from_manifest, outputs.get("findings") or [])
        if not (finding.name == THRESHOLD_FINDING and outputs.get("thresholds"))
    }
    trials = [TrialLine.from_manifest(line) for line in outputs.get("per_trial") or []]
    errors: dict[str, list[TrialError]] = {}
    for error in trial_errors(phase, outputs):
        errors.setdefault(error.invariant, []).append(error)
    names = _invariant_names(manifest, [*findings, *errors], trials)
    cases = [
        _invariant_case(name, findings.get(name), trials, outputs, errors.get(name, []))
        for name in names
    ]
    cases += [_threshold_case(threshold) for threshold in outputs.get("thresholds") or []]
    return cases or [Case(phase)]


_NOT_RUN = ("skipped", "pending", "running")
THRESHOLD_FINDING = "threshold"  # the finding a phase adds per breached threshold


def _threshold_case(threshold: JsonObject) -> Case:
    """One testcase per threshold: its finding says the same, so it is not a second one."""
    text = str(threshold.get("threshold"))
    if threshold.get("held", True):
        return Case(f"threshold: {text}")
    observed = threshold.get("observed")
    detail = f"threshold breached: {text}" + (
        f" (observed {observed})" if observed is not None else ""
    )
    return Case(f"threshold: {text}", "failure", detail, detail, "ThresholdBreached")


def _suite(
    root: ET.Element, manifest: RunManifest, phase: str, record: PhaseRecord, cases: list[Case]
) -> ET.Element:
    status = str(record.status)
    suite = ET.SubElement(root, "testsuite", name=clean(f"heisen.{phase}"))
    if record.started_at:
        suite.set("timestamp", clean(record.started_at))
    suite.set("time", f"{record.duration_s or 0.0:.3f}")
    properties = ET.SubElement(suite, "properties")
    facts: list[tuple[str, Any]] = [
        ("run", manifest.run.id),
        ("seed", manifest.run.seed),
        ("status", status),
        ("summary", record.summary or record.skip_reason or ""),
    ]
    if status == "inconclusive":
        facts.append(("inconclusive_reason", inconclusive_reason(phase, record)))
    bound = bound_of(
        phase, record.outputs, pipeline=manifest.pipeline, duration_s=record.duration_s
    )
    if bound is not None:
        facts.append(("bound", bound.line()))
    for key, value in facts:
        ET.SubElement(properties, "property", name=key, value=clean(value))
    counts = dict.fromkeys(("failures", "errors", "skipped"), 0)
    attributed = bool(trial_errors(phase, record.outputs))
    for case in (
        _with_status(phase, case, record, str(manifest.status), attributed) for case in cases
    ):
        element = ET.SubElement(
            suite, "testcase", classname=clean(f"heisen.{phase}"), name=clean(case.name)
        )
        if case.outcome == "passed":
            continue
        tag = {"failure": "failure", "error": "error", "skipped": "skipped"}[case.outcome]
        counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[case.outcome]] += 1
        child = ET.SubElement(element, tag, message=clean(case.message))
        if case.kind:
            child.set("type", clean(case.kind))
        if case.detail:
            child.text = clean(case.detail)
    suite.set("tests", str(len(cases)))
    for key, value in counts.items():
        suite.set(key, str(value))
    return suite


def _with_status(
    phase: str, case: Case, record: PhaseRecord, run_status: str, attributed: bool
) -> Case:
    """``case`` as the phase's status leaves it; ``attributed``: trial errors name the invariants at fault."""
    status = str(record.status)
    if status == "skipped":
        return Case(case.name, "skipped", record.skip_reason or record.summary or "skipped")
    if status in ("pending", "running"):
        return Case(case.name, "skipped", f"not run: the run ended {run_status}")
    if status == "inconclusive" and case.outcome == "passed":
        return Case(case.name, "skipped", f"inconclusive: {inconclusive_reason(phase, record)}")
    if status == "error" and case.outcome == "passed" and not attributed:
        error = record.error
        message = error.message if error else (record.summary or "the phase failed to run")
        return Case(case.name, "error", message, kind=error.type if error else "PhaseError")
    return case


def _invariant_names(manifest: RunManifest, named: list[str], trials: list[TrialLine]) -> list[str]:
    names = [
        str(inv.get("name"))
        for inv in manifest.pipeline.get("invariants") or []
        if isinstance(inv, dict)
    ]
    for name in [*named, *(v for trial in trials for v in trial.violations)]:
        if name not in names:
            names.append(name)
    return names


def _invariant_case(
    name: str,
    finding: FindingRecord | None,
    trials: list[TrialLine],
    outputs: Mapping[str, Any],
    errors: list[TrialError],
) -> Case:
    violating = [t.trial for t in trials if name in t.violations]
    if finding is None and not violating:
        return _error_case(name, errors) if errors else Case(name)
    total = outputs.get("trials", len(trials))
    message = finding.message if finding else f"{name} violated"
    evidence = finding.evidence if finding else {}
    compared = evidence_line(evidence)
    lines = [message, *([f"evidence: {compared}"] if compared else []), ""]
    if violating:
        shown = ", ".join(str(t) for t in violating[:50]) + (" …" if len(violating) > 50 else "")
        lines.append(f"violating trials: {shown} ({len(violating)} of {total} trials recorded)")
    lines.append(f"violation rate: {outputs.get('violation_rate')} (95% CI {outputs.get('ci95')})")
    if finding and finding.replay:
        lines.append(f"replay: {finding.replay}")
    timeline = evidence.get("timeline")
    operations = evidence.get("operations")
    if timeline:
        lines += ["", "minimal violating history:", str(timeline)]
    if isinstance(operations, list) and operations:
        lines += ["", "operations:", *(json.dumps(op, default=str) for op in operations)]
    if errors:
        lines += ["", "also could not be evaluated:", *(e.describe() for e in errors)]
    return Case(name, "failure", message, "\n".join(lines), "InvariantViolated")


def _error_case(name: str, errors: list[TrialError]) -> Case:
    """An invariant that could not be evaluated: an ``<error>`` naming the trial and the fault."""
    first = errors[0]
    lines = [e.describe() for e in errors]
    lines += ["", *dict.fromkeys(f"{e.kind} error: {e.meaning}" for e in errors)]
    lines += ["", "nothing was decided about this invariant in these trials: it is not a pass"]
    return Case(name, "error", first.describe(), "\n".join(lines), "NotEvaluated")
