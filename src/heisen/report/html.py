"""``report.html``: one self-contained page that opens offline.

Inline CSS (``assets/report.css``), inline SVG charts (``_svg``) and one small
script that only adds "Copy" buttons to replay commands; the page reads the
same without it. Everything from the manifest is escaped, and a
Content-Security-Policy allows no script but that one, as a second line of
defence against hostile payloads.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from heisen._serialised import JsonObject
from heisen.manifest import PhaseRecord, RunManifest, write_atomically
from heisen.outputs import (
    FindingRecord,
    Hotspot,
    Observed,
    PredictOutputs,
    TimelineEntry,
    TrialLine,
)
from heisen.report import _chaos_timeline, _ladder_charts, _svg
from heisen.report._calibration import CalibrationView, calibration
from heisen.report._chaos_view import over_time_section, steady_state_table
from heisen.report._facts import (
    bounds,
    error_headline,
    evidence_pairs,
    inconclusive_phases,
    inconclusive_reason,
    trial_errors,
)
from heisen.report._fuzz_cases import fuzz_failures
from heisen.report._hotspots import format_ms, observed_outputs, request_label, where, window_label
from heisen.report._ladder import (
    Rung,
    format_rate,
    headline,
    invariant_lines,
    ladder,
    target_ladder,
)
from heisen.schema import LOAD_PHASES

__all__ = ["FILE_NAME", "render", "write"]

FILE_NAME = "report.html"

_SCRIPT = (
    "document.querySelectorAll('button[data-copy]').forEach(function (b) {"
    " b.hidden = false;"
    " b.addEventListener('click', function () {"
    "  var text = document.getElementById(b.dataset.copy).textContent;"
    "  var done = function () { b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy'; }, 1500); };"
    "  if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, function () {}); }"
    " });"
    "});"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_CSP = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{_SCRIPT_HASH}'"


def write(manifest: RunManifest, run_dir: Path) -> Path:
    """Write ``report.html`` into the run dir; the path relative to it."""
    write_atomically(Path(run_dir) / FILE_NAME, render(manifest, Path(run_dir)))
    return Path(FILE_NAME)


def render(manifest: RunManifest, run_dir: Path | None = None) -> str:
    """The page; ``run_dir``, when given, adds what the phases left there (load over time)."""
    css = resources.files("heisen.report").joinpath("assets/report.css").read_text(encoding="utf-8")
    sections = [
        s
        for s in (
            _verdict_section(manifest),
            _ladder_section(manifest),
            _phases_section(manifest),
            _findings_section(manifest),
            _latency_section(manifest),
            over_time_section(manifest, run_dir),
            _trials_section(manifest),
            _fuzz_section(manifest),
            _contain_section(manifest),
            _chaos_section(manifest),
            _hotspots_section(manifest),
        )
        if s
    ]
    toc = "".join(
        f'<li><a href="#{anchor}">{escape(title)}</a></li>' for anchor, title, _ in sections
    )
    title = f"heisen run {manifest.run.id}: {manifest.status}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{css}</style></head><body><main>"
        f'{_header(manifest)}<nav aria-label="Sections"><ul>{toc}</ul></nav>'
        + "".join(
            f'<section id="{anchor}" aria-labelledby="{anchor}-h"><h2 id="{anchor}-h">{escape(heading)}</h2>'
            f"{body}</section>"
            for anchor, heading, body in sections
        )
        + f"</main><script>{_SCRIPT}</script></body></html>\n"
    )


Section = tuple[str, str, str]


def _badge(status: Any) -> str:
    text = str(status)
    return f'<span class="badge st-{escape(text.replace(" ", "-"))}">{escape(text)}</span>'


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()
) -> str:
    """A table; ``rows`` hold HTML already escaped by the caller; ``numeric`` columns align right."""
    right = set(numeric)
    body = "".join(_row(row, right) for row in rows)
    return f"<table>{_head(headers, right)}<tbody>{body}</tbody></table>"


def _head(headers: Sequence[str], right: set[int]) -> str:
    cells = "".join(
        f'<th scope="col"{" class=num" if i in right else ""}>{escape(h)}</th>'
        for i, h in enumerate(headers)
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _row(cells: Sequence[str], right: set[int]) -> str:
    return (
        "<tr>"
        + "".join(f"<td{' class=num' if i in right else ''}>{c}</td>" for i, c in enumerate(cells))
        + "</tr>"
    )


def _pre(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, indent=1, ensure_ascii=False, default=str)
    )
    return f"<pre>{escape(text)}</pre>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _header(manifest: RunManifest) -> str:
    run = manifest.run
    durations = ", ".join(
        f"{name} {record.duration_s:.1f}s"
        for name, record in manifest.phases.items()
        if (record.duration_s or 0.0) >= 0.05
    )
    total = sum(record.duration_s or 0.0 for record in manifest.phases.values())
    items = [
        ("pipeline", run.pipeline),
        ("seed", str(run.seed)),
        ("started", run.started_at),
        ("finished", run.finished_at or "not finished"),
        ("phase time", f"{total:.1f}s ({durations})" if durations else "—"),
        ("pipeline sha256", run.pipeline_sha256),
        ("heisen", run.heisen_version),
    ]
    meta = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items)
    return (
        f"<header><h1>heisen run {escape(run.id)} {_badge(manifest.status)}</h1>"
        f'<dl class="meta">{meta}</dl></header>'
    )


def _verdict_section(manifest: RunManifest) -> Section | None:
    """What a CI reader must see first: what could not be evaluated, what proves nothing, bounds."""
    parts = [_error_box(name, record) for name, record in manifest.phases.items()]
    parts += [
        f'<div class="inconclusive-box"><p>{_badge("inconclusive")} <strong>{escape(name)}</strong>: '
        f'{escape(reason)}</p><p class="muted">Its condition never happened, so this phase '
        "proves nothing either way.</p></div>"
        for name, reason in inconclusive_phases(manifest)
    ]
    found = bounds(manifest)
    if found:
        rows = [
            (
                escape(b.phase),
                _badge("proven" if b.proven else "not proven"),
                escape(b.sentence()),
                escape(f"{b.trials_per_s:.3g}" if b.trials_per_s else ""),
            )
            for b in found
        ]
        parts.append(
            "<h3>Confidence bounds</h3>"
            + _table(["phase", "bound", "in words", "trials/s"], rows, (3,))
        )
    body = "".join(part for part in parts if part)
    return ("verdict", "Verdict", body) if body else None


def _error_box(name: str, record: PhaseRecord) -> str:
    errors = trial_errors(name, record.outputs)
    if str(record.status) != "error" or (record.error is None and not errors):
        return ""
    headline = error_headline(name, record)
    body = (
        f"<p>{_badge('error')} <strong>{escape(name)}</strong>"
        + (f": {escape(headline)}" if headline else "")
        + "</p>"
    )
    if errors:
        body += _table(
            ["trial", "invariant", "fault", "message"],
            [
                (
                    escape(str(e.trial) if e.trial is not None else "?"),
                    f"<code>{escape(e.invariant)}</code>",
                    escape(e.kind),
                    escape(e.message),
                )
                for e in errors
            ],
            (0,),
        )
        meanings = dict.fromkeys(e.meaning for e in errors)
        body += "".join(
            f'<p class="muted">Could not be evaluated: {escape(m)}; nothing here counts as held.</p>'
            for m in meanings
        )
    return f'<div class="error-box">{body}</div>'


_LADDER_CAPTION = (
    "Bars: share of trials that violated an invariant; "
    "whiskers: Wilson 95% interval. predict is its estimate for the top hotspot (from the "
    "observed traffic, or the architecture model)."
)


def _ladder_section(manifest: RunManifest) -> Section | None:
    target = target_ladder(manifest)
    rungs = target[1] if target is not None else ladder(manifest)
    calibrated = calibration(manifest)
    if not rungs and calibrated is None:
        return None
    others = "".join(f'<p class="muted">{escape(line)}</p>' for line in invariant_lines(manifest))
    body = f'<p class="lead">{escape(headline(manifest))}</p>' + others
    if rungs:
        body += _figure(
            _ladder_charts.ladder_chart(rungs),
            _LADDER_CAPTION
            if target is None
            else f"Bars: share of trials that violated {target[0]}; whiskers: Wilson 95% interval."
            + (
                " predict (grey) is its forecast: calibrated on this run's loads when it was, "
                "else the top hotspot's simulated rate."
                if rungs[0].phase == "predict"
                else ""
            ),
        )
    if target is not None and rungs:
        body += _target_measures(rungs)
    elif rungs:
        rows = [
            (
                escape(r.phase),
                _badge(r.status),
                _rate(r),
                _ci(r),
                escape(str(r.trials or "")),
                escape(r.note),
            )
            for r in rungs
        ]
        body += _table(
            ["phase", "status", "violation rate", "95% CI", "trials", "note"], rows, (2, 3, 4)
        )
    if calibrated is not None:
        body += _calibration(calibrated)
    return ("ladder", "Reproduction ladder", body)


def _target_measures(rungs: Sequence[Rung]) -> str:
    """The target's second measures (per-operation rate, smallest burst) and the table of both."""
    body = ""
    if any(r.per_operation is not None for r in rungs):
        body += _figure(
            _ladder_charts.per_operation_chart(rungs),
            "Dots: the invariant's severity per operation, mean over the trials; "
            "whiskers: Student-t 95% interval.",
        )
    else:
        body += '<p class="muted">Per-operation rate: not measured (the invariant declares no severity:).</p>'
    body += _figure(
        _ladder_charts.burst_chart(rungs),
        "Bars: the smallest burst that reproduced the race in at least half its trials "
        "(dashed: none did, up to the largest tried); dots: each burst the sweep tried, "
        "filled where it reproduced. predict's is its forecast.",
    )
    rows = [
        (
            escape(r.phase),
            _badge(r.status),
            _rate(r) if r.rate is not None else "not measured",
            _ci(r),
            escape(_per_operation(r)),
            escape(r.burst.label().removeprefix("burst ") if r.burst else "not measured"),
            escape(str(r.trials or "")),
            escape(" · ".join(part for part in (r.condition, r.note) if part)),
        )
        for r in rungs
    ]
    return body + _table(
        [
            "phase",
            "status",
            "violation rate",
            "95% CI",
            "per operation",
            "smallest burst",
            "trials",
            "note",
        ],
        rows,
        (2, 3, 4, 5, 6),
    )


def _per_operation(rung: Rung) -> str:
    if rung.per_operation is None:
        return "not measured"
    if rung.per_operation_ci95 is None:
        return f"{rung.per_operation:.3g}"
    lo, hi = rung.per_operation_ci95
    return f"{rung.per_operation:.3g} [{lo:.3g}\N{EN DASH}{hi:.3g}]"


def _calibration(view: CalibrationView) -> str:
    rows = [
        (
            escape(str(p.load)),
            escape(format_rate(float(p.predicted))),
            escape(format_rate(float(p.observed))),
            escape(f"{ratio:.3g}" if (ratio := view.point_ratio(p)) is not None else "—"),
        )
        for p in sorted(view.points, key=lambda p: p.load)
    ]
    verdict = {None: "", True: " Within 2x at every load.", False: " Not within 2x at every load."}
    return _figure(
        _ladder_charts.calibration_chart(view),
        "predict calibrated on this run: hollow, the predicted violation rate at each load; "
        "filled, the rate observed there." + verdict[view.within_2x],
    ) + _table(
        ["load (requests)", "predicted", "observed", "predicted/observed"], rows, (0, 1, 2, 3)
    )


def _rate(rung: Rung) -> str:
    return escape(format_rate(rung.rate)) if rung.rate is not None else "—"


def _ci(rung: Rung) -> str:
    return (
        escape(f"{format_rate(rung.ci95[0])} \N{EN DASH} {format_rate(rung.ci95[1])}")
        if rung.ci95
        else ""
    )


def _phases_section(manifest: RunManifest) -> Section:
    rows = []
    for name, record in manifest.phases.items():
        text = escape(record.summary or record.skip_reason or "")
        if record.error is not None:
            text += f'<div class="error-box"><strong>{escape(record.error.type)}</strong>: {escape(record.error.message)}</div>'
        if str(record.status) == "inconclusive":
            text += f'<div class="inconclusive-box">inconclusive: {escape(inconclusive_reason(name, record))}</div>'
        if record.artifacts:
            text += (
                '<div class="muted">files: '
                + ", ".join(_file_link(a) for a in record.artifacts)
                + "</div>"
            )
        duration = f"{record.duration_s:.1f}s" if record.duration_s is not None else ""
        rows.append((escape(name), _badge(record.status), escape(duration), text))
    return ("phases", "Phases", _table(["phase", "status", "duration", "summary"], rows, (2,)))


def _file_link(path: str) -> str:
    if ":" in path or path.startswith(("/", "\\")):
        return f"<code>{escape(path)}</code>"
    return f'<a href="{escape(path)}"><code>{escape(path)}</code></a>'


def _findings(manifest: RunManifest) -> list[FindingRecord]:
    return [
        FindingRecord.from_manifest(finding)
        for record in manifest.phases.values()
        for finding in record.outputs.get("findings") or []
    ]


def _findings_section(manifest: RunManifest) -> Section:
    findings = _findings(manifest)
    if not findings:
        held = str(manifest.status) == "passed"
        return (
            "findings",
            "Findings",
            f"<p>{'No invariant was violated.' if held else 'No findings were recorded.'}</p>",
        )
    parts = [
        f"<p>{len(findings)} finding{'s' if len(findings) != 1 else ''}; each replay command reproduces it.</p>"
    ]
    for i, finding in enumerate(findings):
        parts.append(
            f'<article class="finding"><h3>{escape(finding.phase)}: '
            f"{escape(finding.name)}</h3><p>{escape(finding.message)}</p>"
        )
        parts.append(_evidence_table(finding.evidence))
        if finding.replay:
            parts.append(replay_block(f"replay-{i}", finding.replay))
        parts.append(_evidence(finding.evidence))
        parts.append("</article>")
    return ("findings", "Findings", "".join(parts))


def replay_block(anchor: str, command: str) -> str:
    return (
        f'<div class="replay"><pre><code id="{escape(anchor)}">{escape(command)}</code></pre>'
        f'<button type="button" data-copy="{escape(anchor)}" hidden>Copy</button></div>'
    )


def _evidence(evidence: Mapping[str, object]) -> str:
    parts = []
    operations = evidence.get("operations")
    timeline = evidence.get("timeline")
    if isinstance(operations, list) and operations:
        parts.append("<h4>Minimal violating history</h4>")
        parts.append(
            _figure(
                _svg.history_chart(operations),
                "Bars run from invoke to completion: green ok, grey failed, amber dashed unknown (info).",
            )
        )
        parts.append(
            "<details><summary>operations (JSON lines)</summary>"
            + _pre("\n".join(json.dumps(op, ensure_ascii=False, default=str) for op in operations))
            + "</details>"
        )
    if timeline:
        parts.append(f"<details><summary>text timeline</summary>{_pre(str(timeline))}</details>")
    return "".join(parts)


def _evidence_table(evidence: Any) -> str:
    """The values the invariant compared, one row each."""
    pairs = evidence_pairs(evidence)
    if not pairs:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td><code>{escape(value)}</code></td></tr>"
        for name, value in pairs
    )
    return (
        '<table class="evidence"><caption class="muted">evidence: the values compared</caption>'
        f'<thead><tr><th scope="col">name</th><th scope="col">value</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _load_phases(manifest: RunManifest) -> dict[str, JsonObject]:
    return {
        name: record.outputs
        for name, record in manifest.phases.items()
        if name in LOAD_PHASES and record.outputs.get("latency_ms")
    }


def _latency_section(manifest: RunManifest) -> Section | None:
    phases = _load_phases(manifest)
    if not phases:
        return None
    series = {
        name: {k: float(v) for k, v in out["latency_ms"].items() if isinstance(v, int | float)}
        for name, out in phases.items()
    }
    body = _figure(
        _svg.latency_chart(series), "Lower is better; each phase adds harsher conditions."
    )
    rows = [
        (
            escape(name),
            *(escape(f"{pts[p]:g}") if p in pts else "" for p in _svg.PERCENTILES),
            escape(f"{phases[name].get('rps', 0):,.0f}"),
            escape(f"{phases[name].get('requests', 0):,}"),
            escape(_codes(phases[name])),
        )
        for name, pts in series.items()
    ]
    body += _table(
        [
            "phase",
            *(f"{p} ms" for p in _svg.PERCENTILES),
            "req/s",
            "requests",
            "status codes / errors",
        ],
        rows,
        range(1, 10),
    )
    trials = _per_trial(phases)
    if trials:
        body += "<h3>p99 per trial</h3>" + _figure(
            _svg.p99_chart(trials), "Red rings: trials that violated an invariant."
        )
    return ("latency", "Latency", body)


def _per_trial(phases: Mapping[str, Mapping[str, Any]]) -> dict[str, list[TrialLine]]:
    """Each load phase's `per_trial`, typed, for the phases that wrote one."""
    return {
        name: [TrialLine.from_manifest(line) for line in out["per_trial"]]
        for name, out in phases.items()
        if out.get("per_trial")
    }


def _codes(outputs: Mapping[str, Any]) -> str:
    items = [f"{code}: {n:,}" for code, n in (outputs.get("status_codes") or {}).items()]
    items += [f"{kind}: {n:,}" for kind, n in (outputs.get("errors") or {}).items()]
    return ", ".join(items)


def _trials_section(manifest: RunManifest) -> Section | None:
    trials = _per_trial(_load_phases(manifest))
    if not trials:
        return None
    return (
        "trials",
        "Violations per trial",
        _figure(
            _svg.trial_strips(trials),
            "One cell per trial; hover a cell for the invariants it broke.",
        ),
    )


def _fuzz_section(manifest: RunManifest) -> Section | None:
    record = manifest.phases.get("fuzz")
    if record is None or not record.outputs:
        return None
    failures = fuzz_failures(record.outputs)
    raw = {str(f.get("id")): f for f in record.outputs.get("failures") or []}
    count = len(record.outputs.get("failures") or [])
    intro = (
        f"<p>{escape(str(record.outputs.get('cases', 0)))} cases sent, {count} failed: "
        f"{len(failures)} distinct failure{'s' if len(failures) != 1 else ''}.</p>"
    )
    rows = [
        (
            escape(f.name.removeprefix("fuzz: "))
            + (
                f' <span class="muted">and {f.duplicates} more cases</span>' if f.duplicates else ""
            ),
            escape(f.message),
            _pre(raw.get(f.case_id, {}).get("payload")),
            _pre(raw.get(f.case_id, {}).get("shrunk")),
            replay_block(f"fuzz-replay-{i}", str(raw.get(f.case_id, {}).get("replay", ""))),
        )
        for i, f in enumerate(failures)
    ]
    table = _table(["case → result", "detail", "payload", "shrunk", "replay"], rows) if rows else ""
    return ("fuzz", "Fuzz failures", intro + table)


def _contain_section(manifest: RunManifest) -> Section | None:
    outputs = _outputs(manifest.phases.get("contain"))
    if not outputs.get("limits") and not outputs.get("throttled"):
        return None
    limits = outputs.get("limits") or {}
    throttled = outputs.get("throttled") or {}
    periods, hit = throttled.get("periods") or 0, throttled.get("throttled_periods") or 0
    share = f" ({hit / periods:.0%} of periods)" if periods else ""
    rows = [(escape(f"limit {k}"), escape(str(v))) for k, v in limits.items()]
    rows += [
        ("throttled periods", escape(f"{hit:,} of {periods:,}{share}")),
        ("time throttled", escape(f"{throttled.get('throttled_s', 0)}s")),
    ]
    return ("contain", "Contain: CPU limits and throttling", _table(["", "value"], rows))


def _outputs(record: PhaseRecord | None) -> JsonObject:
    return record.outputs if record is not None else {}


def _chaos_section(manifest: RunManifest) -> Section | None:
    record = manifest.phases.get("chaos")
    outputs = _outputs(record)
    if not any(outputs.get(k) for k in ("experiments", "steady_state", "timeline", "data_loss")):
        return None
    body = ""
    body += steady_state_table(outputs.get("steady_state") or {})
    timeline = [TimelineEntry.from_manifest(entry) for entry in outputs.get("timeline") or []]
    if timeline:
        body += _figure(
            _chaos_timeline.timeline_chart(timeline, record.duration_s if record else None),
            "One lane per fault. Red bars: while the fault was active; red dots: injected; "
            "green dots: recovered or removed; blue dots: steady-state checks (red when a "
            "probe failed). Hover a mark for its detail.",
        )
        body += _table(
            ["t", "event", "detail"],
            [(escape(f"{e.t_s}s"), escape(e.event), escape(e.detail)) for e in timeline],
            (0,),
        )
    if outputs.get("experiments"):
        body += "<h3>Experiments</h3>" + _table(
            ["experiment", "kind", "injected", "verdict"],
            [
                (
                    escape(str(x.get("name"))),
                    escape(str(x.get("kind"))),
                    escape(str(x.get("injected"))),
                    _badge(x.get("verdict")),
                )
                for x in outputs["experiments"]
            ],
        )
    loss = outputs.get("data_loss") or {}
    if loss:
        body += "<h3>Acknowledged writes</h3>" + _table(
            ["acknowledged", "persisted", "lost", "unknown"],
            [
                tuple(
                    escape(str(loss.get(k, "")))
                    for k in ("acknowledged", "persisted", "lost", "unknown")
                )
            ],
            range(4),
        )
    return ("chaos", "Chaos", body)


def _hotspots_section(manifest: RunManifest) -> Section | None:
    outputs = _outputs(manifest.phases.get("predict"))
    observed = observed_outputs(outputs)
    if observed is not None:
        return _observed_hotspots(observed)
    hotspots = outputs.get("hotspots") or []
    if not hotspots:
        return None
    rows = []
    for h in hotspots:
        ci = h.get("ci95")
        load = h.get("load") or {}
        rows.append(
            (
                escape(str(h.get("boundary"))),
                escape(str(h.get("service"))),
                escape(str(h.get("resource"))),
                escape(str(h.get("anomaly"))),
                escape(f"{float(h.get('score', 0)):.2f}"),
                escape(format_rate(float(h.get("predicted_violation_rate", 0)))),
                escape(f"{format_rate(ci[0])} \N{EN DASH} {format_rate(ci[1])}" if ci else ""),
                escape(
                    f"{load.get('requests', '')} req / {load.get('window_ms', '')} ms"
                    if load
                    else ""
                ),
            )
        )
    return (
        "hotspots",
        "Predicted hotspots",
        _table(
            [
                "boundary",
                "service",
                "resource",
                "anomaly",
                "score",
                "predicted rate",
                "95% CI",
                "load",
            ],
            rows,
            (4, 5, 6),
        ),
    )


def _observed_hotspots(outputs: PredictOutputs) -> Section:
    """predict read the running system: each race with the operations that show it, the
    patterns something guards, and the traffic it read."""
    body = (
        '<p class="muted">Observe mode: read from the running system\'s traffic. Each pattern '
        "shows under its row the operations of one send, with their time since the request "
        "was sent.</p>"
    )
    if outputs.hotspots:
        body += _hotspot_rows(
            [
                "request",
                "key or table",
                "anomaly",
                "window (median, p90)",
                "seen",
                "smallest burst",
                "score",
                "predicted rate",
            ],
            [
                (
                    *_pattern_cells(h),
                    escape(window_label(h)),
                    escape(h.seen),
                    escape(_smallest_burst(h)),
                    escape(f"{float(h.score):.1f}"),
                    escape(_predicted_rate(h)),
                )
                for h in outputs.hotspots
            ],
            [h.evidence for h in outputs.hotspots],
            (4, 5, 6, 7),
        )
    else:
        body += "<p>No unguarded race pattern showed in the observed traffic.</p>"
    if outputs.protected:
        body += '<h3 id="protected">Protected patterns</h3>' + _hotspot_rows(
            ["request", "key or table", "anomaly", "protected by", "window (median, p90)", "seen"],
            [
                (
                    *_pattern_cells(h),
                    escape(h.protected),
                    escape(window_label(h)),
                    escape(h.seen),
                )
                for h in outputs.protected
            ],
            [h.evidence for h in outputs.protected],
            (5,),
        )
    if outputs.observed is not None:
        body += _observed_traffic(outputs.observed)
    return ("hotspots", "Predicted hotspots", body)


def _pattern_cells(hotspot: Hotspot) -> tuple[str, str, str]:
    name = hotspot.request or hotspot.operation
    request = f"<code>{escape(request_label(hotspot))}</code>" + (
        f' <span class="muted">{escape(name)}</span>' if name else ""
    )
    pair = f' <span class="muted">with {escape(hotspot.pair)}</span>' if hotspot.pair else ""
    return request, f"<code>{escape(where(hotspot))}</code>", escape(hotspot.anomaly) + pair


def _smallest_burst(hotspot: Hotspot) -> str:
    if hotspot.smallest_reproducing_burst is not None:
        return str(hotspot.smallest_reproducing_burst)
    return f"none up to {hotspot.load.requests}" if hotspot.load.requests else "none"


def _predicted_rate(hotspot: Hotspot) -> str:
    rate = format_rate(float(hotspot.predicted_violation_rate))
    return f"{rate} at {hotspot.load.requests}" if hotspot.load.requests else rate


def _hotspot_rows(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    evidence: Sequence[Sequence[str]],
    numeric: Iterable[int],
) -> str:
    """A table whose rows each carry their evidence lines on a full-width line beneath."""
    right = set(numeric)
    body = ""
    for cells, lines in zip(rows, evidence, strict=True):
        body += _row(cells, right)
        if lines:
            text = escape("\n".join(lines))
            body += f'<tr><td colspan="{len(headers)}"><pre>{text}</pre></td></tr>'
    return f"<table>{_head(headers, right)}<tbody>{body}</tbody></table>"


def _observed_traffic(observed: Observed) -> str:
    links = ", ".join(
        f"<code>{escape(link)}</code> ({escape(protocol)})"
        for link, protocol in observed.links.items()
    )
    sends = sum(r.sends for r in observed.requests)
    body = (
        '<h3 id="observed">Observed traffic</h3>'
        f"<p>Links read: {links or 'none'}. {sends} send{'s' if sends != 1 else ''} "
        f"in {format_ms(float(observed.elapsed_s))} s; {observed.background} operation"
        f"{'s' if observed.background != 1 else ''} no request sent (background).</p>"
    )
    used = list(dict.fromkeys(link for r in observed.requests for link in r.operations))
    if not observed.requests:
        return body
    rows = [
        (
            f"<code>{escape(_endpoint(r.endpoint.method, r.endpoint.path) if r.endpoint else '')}"
            f'</code> <span class="muted">{escape(r.request)}</span>',
            escape(str(r.sends)),
            escape(", ".join(str(n) for n in r.replicas)),
            escape(format_ms(float(r.latency_ms))),
            *(escape(str(r.operations.get(link, 0))) for link in used),
        )
        for r in observed.requests
    ]
    return (
        body
        + _table(
            ["request", "sends", "replicas", "latency ms", *used],
            rows,
            range(1, 4 + len(used)),
        )
        + '<p class="muted">Per link: the operations of one send (median over the sends).</p>'
    )


def _endpoint(method: str, path: str) -> str:
    return f"{method} {path}".strip()
