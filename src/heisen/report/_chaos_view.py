"""The HTML of chaos's steady state (a table of probes per window) and of each load phase
over time (from the history files in the run dir, chaos's faults shaded)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

from heisen.manifest import RunManifest
from heisen.outputs import ProbeLine, TimelineEntry
from heisen.report._chaos_timeline import FaultWindow, fault_windows, load_start
from heisen.report._timeseries import load_file, read_series
from heisen.report._timeseries_chart import series_chart
from heisen.schema import LOAD_PHASES

__all__ = ["over_time_section", "steady_state_table"]

_HEAD = ("window", "probe", "mode", "evaluations", "failures", "verdict", "message")
_NUMERIC = (3, 4)


def _badge(verdict: str) -> str:
    text = verdict or "—"
    return f'<span class="badge st-{escape(text.lower().replace(" ", "-"))}">{escape(text)}</span>'


def steady_state_table(steady: Mapping[str, object]) -> str:
    """One row per probe and window: how often it ran, how often it failed, its verdict.

    A window holds ``{verdict, probes}``; older manifests hold only its verdict (``held``).
    """
    rows: list[tuple[str, ...]] = []
    for window, state in steady.items():
        if not isinstance(state, Mapping):
            rows.append((escape(window), "", "", "", "", _badge(str(state)), ""))
            continue
        verdict = str(state.get("verdict") or "")
        probes = [ProbeLine.from_manifest(p) for p in state.get("probes") or []]
        if not probes:
            rows.append(
                (
                    escape(window),
                    '<span class="muted">no probe</span>',
                    "",
                    "",
                    "",
                    _badge(verdict),
                    "",
                )
            )
        for i, probe in enumerate(probes):
            rows.append(
                (
                    escape(window) if i == 0 else "",
                    f"<code>{escape(probe.name)}</code>",
                    escape(probe.mode),
                    escape(str(probe.evaluations)),
                    escape(str(probe.failures)),
                    _badge(probe.verdict or verdict),
                    escape(probe.message),
                )
            )
    if not rows:
        return ""
    head = "".join(
        f'<th scope="col"{" class=num" if i in _NUMERIC else ""}>{h}</th>'
        for i, h in enumerate(_HEAD)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in _NUMERIC else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return (
        "<h3>Steady state</h3>"
        f'<table class="steady-state"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


_CAPTION = (
    "Per second, from every request the phase sent: requests completed, p50 and p99 latency "
    "from the write to the answer, and completions that were not ok (fail: certainly not "
    "applied; info: a timeout, reset or closed connection, outcome unknown). Shaded: a fault "
    "was active."
)


def over_time_section(manifest: RunManifest, run_dir: Path | None) -> tuple[str, str, str] | None:
    """Each load phase's per-second series, when its request log is in ``run_dir``."""
    if run_dir is None:
        return None
    figures = []
    for name, record in manifest.phases.items():
        if name not in LOAD_PHASES:
            continue
        path = load_file(run_dir, name, record.artifacts)
        seconds = read_series(path) if path is not None else []
        if not seconds:
            continue
        windows = _windows(record.outputs) if name == "chaos" else []
        figures.append(f"<h3>{escape(name)}</h3>{series_chart(name, seconds, windows)}")
    if not figures:
        return None
    return (
        "over-time",
        "Load over time",
        f'<p class="muted">{escape(_CAPTION)}</p>' + "".join(figures),
    )


def _windows(outputs: Mapping[str, object]) -> list[FaultWindow]:
    """Chaos's fault windows, moved to the load's clock (its first request is second 0)."""
    raw = outputs.get("timeline")
    timeline = [TimelineEntry.from_manifest(e) for e in raw] if isinstance(raw, list) else []
    if not timeline:
        return []
    start = load_start(timeline)
    end = max(float(e.t_s) for e in timeline)
    return [
        FaultWindow(w.name, w.start_s - start, w.end_s - start)
        for w in fault_windows(timeline, end)
    ]
