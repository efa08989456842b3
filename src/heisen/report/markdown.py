"""``summary.md``: the run in Markdown, for pull requests and GitHub's job summary.

What went wrong first (invariants that could not be evaluated, phases whose
condition never happened), the confidence bounds, the ladder as a table, then
each finding with the values it compared and its replay command in a code
block. When ``$GITHUB_STEP_SUMMARY`` names a file, the same text is appended
to it. Text from the manifest is escaped (Markdown and the HTML GitHub
renders), and code fences grow longer than any run of backticks they hold.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from heisen.manifest import RunManifest, write_atomically
from heisen.report._calibration import calibration
from heisen.report._facts import (
    bounds,
    error_headline,
    evidence_line,
    inconclusive_phases,
    inconclusive_reason,
    trial_errors,
)
from heisen.report._fuzz_cases import fuzz_failures
from heisen.report._hotspots import (
    hotspot_line,
    observed_outputs,
    protected_line,
    request_label,
)
from heisen.report._ladder import (
    Rung,
    calibration_line,
    format_rate,
    headline,
    invariant_lines,
    ladder,
    target_ladder,
)

__all__ = ["FILE_NAME", "render", "write"]

FILE_NAME = "summary.md"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_MAX_FINDINGS = 30


def write(manifest: RunManifest, run_dir: Path) -> Path:
    """Write ``summary.md`` into the run dir (and append it to ``$GITHUB_STEP_SUMMARY``)."""
    text = render(manifest)
    write_atomically(Path(run_dir) / FILE_NAME, text)
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return Path(FILE_NAME)


def text(value: Any) -> str:
    """``value`` as inline Markdown that renders literally: no markup, no HTML, one line."""
    plain = " ".join(str(value).split())
    plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    plain = _SPECIAL.sub(r"\\\1", plain)
    return _CONTROL.sub(lambda m: f"\\\\x{ord(m.group()):02x}", plain)


def code_block(body: str, info: str = "") -> str:
    """A fenced block longer than any backtick run inside ``body``."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body.rstrip()}\n{fence}"


def render(manifest: RunManifest) -> str:
    run = manifest.run
    total = sum(record.duration_s or 0.0 for record in manifest.phases.values())
    lines = [
        f"## heisen run {text(run.id)}: **{text(str(manifest.status).upper())}**",
        "",
        f"pipeline {text(run.pipeline)} · seed {run.seed} · {total:.1f}s · heisen {text(run.heisen_version)}",
        "",
    ]
    lines += _errors(manifest)
    lines += _inconclusive(manifest)
    lines += _bounds(manifest)
    target = target_ladder(manifest)
    rungs = target[1] if target is not None else ladder(manifest)
    calibrated = calibration(manifest)
    if rungs:
        others = [f"- {text(line)}" for line in invariant_lines(manifest)]
        lines += [f"**Reproduction ladder:** {text(headline(manifest))}", ""]
        lines += [*others, ""] if others else []
        if calibrated is not None:
            lines += [text(calibration_line(calibrated)), ""]
        lines += _target_table(rungs) if target is not None else _ladder_table(rungs)
        lines.append("")
    elif calibrated is not None:
        lines += [text(calibration_line(calibrated)), ""]
    lines += _phases(manifest)
    lines += _observed_hotspots(manifest)
    lines += _findings(manifest)
    lines += _fuzz(manifest)
    return "\n".join(lines).rstrip() + "\n"


def _ladder_table(rungs: list[Rung]) -> list[str]:
    lines = [
        "| phase | status | violation rate | 95% CI | trials | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rungs:
        rate = format_rate(r.rate) if r.rate is not None else "—"
        ci = f"{format_rate(r.ci95[0])} \N{EN DASH} {format_rate(r.ci95[1])}" if r.ci95 else ""
        lines.append(
            f"| {r.phase} | {text(r.status)} | {rate} | {ci} | {r.trials or ''} | {text(r.note)} |"
        )
    return lines


def _target_table(rungs: list[Rung]) -> list[str]:
    """The target's ladder with both measures; a figure no phase measured reads "not measured"."""
    lines = [
        "| phase | status | violation rate | 95% CI | per operation | smallest burst | trials | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rungs:
        rate = format_rate(r.rate) if r.rate is not None else "not measured"
        ci = f"{format_rate(r.ci95[0])} \N{EN DASH} {format_rate(r.ci95[1])}" if r.ci95 else ""
        per_operation = "not measured"
        if r.per_operation is not None:
            per_operation = f"{r.per_operation:.3g}"
            if r.per_operation_ci95 is not None:
                lo, hi = r.per_operation_ci95
                per_operation += f" [{lo:.3g} \N{EN DASH} {hi:.3g}]"
        burst = r.burst.label().removeprefix("burst ") if r.burst else "not measured"
        note = " · ".join(part for part in (r.condition, r.note) if part)
        lines.append(
            f"| {r.phase} | {text(r.status)} | {rate} | {ci} | {text(per_operation)} | "
            f"{text(burst)} | {r.trials or ''} | {text(note)} |"
        )
    return lines


def _errors(manifest: RunManifest) -> list[str]:
    lines = []
    for name, record in manifest.phases.items():
        errors = trial_errors(name, record.outputs)
        headline = error_headline(name, record)
        if headline is None and not errors:
            continue
        lines += [f"**{text(name)}**" + (f": {text(headline)}" if headline else ""), ""]
        lines += [f"- {text(error.describe())}" for error in errors[:_MAX_FINDINGS]]
        if len(errors) > _MAX_FINDINGS:
            lines.append(f"- … and {len(errors) - _MAX_FINDINGS} more in the run manifest")
        meanings = dict.fromkeys(error.meaning for error in errors)
        lines += ["", *(f"_{text(meaning)}_" for meaning in meanings), ""] if meanings else [""]
    return ["### Errors", "", *lines] if lines else []


def _inconclusive(manifest: RunManifest) -> list[str]:
    phases = inconclusive_phases(manifest)
    if not phases:
        return []
    lines = ["### Inconclusive: the condition never happened", ""]
    lines += [f"- **{text(name)}**: {text(reason)}" for name, reason in phases]
    return [*lines, ""]


def _bounds(manifest: RunManifest) -> list[str]:
    found = bounds(manifest)
    if not found:
        return []
    lines = ["### Confidence bounds", ""]
    lines += [f"- **{text(bound.phase)}**: {text(bound.line())}" for bound in found]
    return [*lines, ""]


def _phases(manifest: RunManifest) -> list[str]:
    lines = ["### Phases", "", "| phase | status | duration | summary |", "|---|---|---:|---|"]
    for name, record in manifest.phases.items():
        summary = record.summary or record.skip_reason or ""
        if record.error is not None:
            summary = f"{record.error.type}: {record.error.message}"
        elif str(record.status) == "inconclusive":
            summary = f"inconclusive: {inconclusive_reason(name, record)}"
        duration = f"{record.duration_s:.1f}s" if record.duration_s is not None else ""
        lines.append(f"| {text(name)} | {text(record.status)} | {duration} | {text(summary)} |")
    return [*lines, ""]


def _observed_hotspots(manifest: RunManifest) -> list[str]:
    """Observe mode: the top hotspot with the operations that show it, and what is protected."""
    record = manifest.phases.get("predict")
    outputs = observed_outputs(record.outputs if record is not None else None)
    if outputs is None:
        return []
    lines = ["### Observed race patterns", ""]
    if outputs.hotspots:
        top = outputs.hotspots[0]
        burst = top.smallest_reproducing_burst
        figures = [f"score {float(top.score):.1f}"]
        figures += [f"smallest reproducing burst {burst}"] if burst is not None else []
        lines += [
            f"**Top hotspot:** {text(hotspot_line(top))} ({text(', '.join(figures))})",
            "",
            f"Request {text(request_label(top))}. Evidence (time since the request was sent):",
            "",
            code_block("\n".join(top.evidence) or "(no operation recorded)"),
            "",
        ]
        others = len(outputs.hotspots) - 1
        if others:
            lines += [f"{others} more hotspot{'s' if others != 1 else ''} in the HTML report.", ""]
    else:
        lines += ["No unguarded race pattern showed in the observed traffic.", ""]
    count = len(outputs.protected)
    if count:
        lines += [f"**{count} protected pattern{'s' if count != 1 else ''}:**", ""]
        lines += [f"- {text(protected_line(h))}" for h in outputs.protected[:_MAX_FINDINGS]]
        if count > _MAX_FINDINGS:
            lines.append(f"- … and {count - _MAX_FINDINGS} more in the run manifest")
        lines.append("")
    else:
        lines += ["No pattern was protected.", ""]
    return lines


def _findings(manifest: RunManifest) -> list[str]:
    findings = [
        f for record in manifest.phases.values() for f in record.outputs.get("findings") or []
    ]
    if not findings:
        held = str(manifest.status) == "passed"
        return ["No invariant was violated." if held else "No findings were recorded.", ""]
    lines = [f"### Findings ({len(findings)})", ""]
    for finding in findings[:_MAX_FINDINGS]:
        lines += [
            f"**{text(finding.get('phase'))}: {text(finding.get('name'))}**: {text(finding.get('message', ''))}",
            "",
        ]
        evidence = evidence_line(finding.get("evidence"))
        if evidence:
            lines += [f"Evidence: {text(evidence)}", ""]
        if finding.get("replay"):
            lines += [code_block(str(finding["replay"]), "sh"), ""]
        timeline = (finding.get("evidence") or {}).get("timeline")
        if timeline:
            lines += [
                "<details><summary>minimal violating history</summary>",
                "",
                code_block(str(timeline)),
                "",
                "</details>",
                "",
            ]
    if len(findings) > _MAX_FINDINGS:
        lines += [f"… and {len(findings) - _MAX_FINDINGS} more in the run manifest.", ""]
    return lines


def _fuzz(manifest: RunManifest) -> list[str]:
    record = manifest.phases.get("fuzz")
    outputs = record.outputs if record is not None else {}
    failures = fuzz_failures(outputs)
    if not failures:
        return []
    raw = {str(f.get("id")): f for f in outputs.get("failures") or [] if isinstance(f, dict)}
    lines = [f"### Fuzz failures ({len(failures)})", ""]
    for failure in failures[:_MAX_FINDINGS]:
        more = f" (and {failure.duplicates} more cases)" if failure.duplicates else ""
        lines += [f"**{text(failure.name)}**{more}: {text(failure.message)}", ""]
        case = raw.get(failure.case_id, {})
        lines += [payload_block(case.get("shrunk", case.get("payload"))), ""]
        if case.get("replay"):
            lines += [code_block(str(case["replay"]), "sh"), ""]
    if len(failures) > _MAX_FINDINGS:
        lines += [f"… and {len(failures) - _MAX_FINDINGS} more in the run manifest.", ""]
    return lines


def payload_block(payload: Any) -> str:
    """The payload as JSON once: a string that already is JSON is shown as it is."""
    if isinstance(payload, str):
        try:
            json.loads(payload)
        except ValueError:
            return code_block(payload)  # not JSON (cut short, or a raw body): shown as text
        return code_block(payload, "json")
    return code_block(json.dumps(payload, ensure_ascii=False, default=str), "json")
