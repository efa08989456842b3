"""A load phase over time: requests/s, p50 and p99 latency and the completions that were not
ok, one panel each on a shared time axis, with the chaos faults' active windows shaded."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from heisen.report._chaos_timeline import FaultWindow
from heisen.report._svg import WIDTH, Scale, chart, nice_step, text_at
from heisen.report._timeseries import Second

__all__ = ["series_chart"]

_LEFT, _RIGHT, _PANEL, _GAP, _TOP = 80, WIDTH - 20, 90, 30, 30


def _axis_top(peak: float, integer: bool) -> float:
    step = nice_step(max(peak, 1e-9) * 1.1 / 4, integer=integer)
    return math.ceil(max(peak, 1e-9) * 1.1 / step) * step


def series_chart(phase: str, seconds: Sequence[Second], windows: Sequence[FaultWindow]) -> str:
    """Three panels over the phase's seconds; ``windows`` in the same seconds (shaded)."""
    end = max([float(len(seconds))] + [w.end_s for w in windows])
    x = Scale(0, max(end, 1.0), _LEFT, _RIGHT)
    body = [
        f'<rect x="{_LEFT}" y="6" width="14" height="12" class="fault-band"/>',
        text_at(_LEFT + 20, 16, "fault active", "label"),
        f'<line x1="{_LEFT + 150}" x2="{_LEFT + 176}" y1="12" y2="12" class="line s-p50"/>',
        text_at(_LEFT + 182, 16, "p50", "label"),
        f'<line x1="{_LEFT + 230}" x2="{_LEFT + 256}" y1="12" y2="12" class="line s-p99"/>',
        text_at(_LEFT + 262, 16, "p99", "label"),
        f'<rect x="{_LEFT + 310}" y="6" width="12" height="12" class="bar-unknown"/>',
        text_at(_LEFT + 328, 16, "unknown outcome (info)", "label"),
        f'<rect x="{_LEFT + 510}" y="6" width="12" height="12" class="bar-failed"/>',
        text_at(_LEFT + 528, 16, "failed (fail)", "label"),
    ]
    panels: list[tuple[str, Callable[[Scale], list[str]], float, bool]] = [
        (
            "requests/s",
            lambda y: [_line(x, y, seconds, lambda s: s.requests, "s-rps")],
            max((s.requests for s in seconds), default=1),
            True,
        ),
        (
            "latency ms",
            lambda y: [
                _line(x, y, seconds, lambda s: s.p50_ms, "s-p50"),
                _line(x, y, seconds, lambda s: s.p99_ms, "s-p99"),
            ],
            max((s.p99_ms or 0.0 for s in seconds), default=1.0),
            False,
        ),
        (
            "not ok/s",
            lambda y: _bars(x, y, seconds),
            max((s.failed + s.unknown for s in seconds), default=1),
            True,
        ),
    ]
    for i, (title, draw, peak, integer) in enumerate(panels):
        top = _TOP + i * (_PANEL + _GAP)
        bottom = top + _PANEL
        y = Scale(0, _axis_top(float(peak) or 1.0, integer), bottom, top)
        for window in windows:
            a, b = x(max(window.start_s, 0.0)), x(window.end_s)
            tip = f"{window.name}: {window.start_s:g}s to {window.end_s:g}s"
            body.append(
                f'<rect x="{a:.1f}" y="{top}" width="{max(b - a, 1):.1f}" height="{_PANEL}" '
                f'class="fault-band"><title>{escape(tip)}</title></rect>'
            )
        for tick in y.ticks(integer=integer):
            body.append(
                f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
            )
            body.append(text_at(_LEFT - 6, y(tick) + 4, f"{tick:g}", "tick", "end"))
        body.append(
            f'<text x="14" y="{(top + bottom) / 2:.1f}" class="tick" text-anchor="middle" '
            f'transform="rotate(-90 14 {(top + bottom) / 2:.1f})">{escape(title)}</text>'
        )
        body += draw(y)
    bottom = _TOP + 3 * _PANEL + 2 * _GAP
    for tick in x.ticks(integer=True):
        body.append(text_at(x(tick), bottom + 22, f"{tick:g} s", "tick", "middle"))
    peak_rps = max((s.requests for s in seconds), default=0)
    worst = max((s.p99_ms or 0.0 for s in seconds), default=0.0)
    desc = (
        f"{phase}: {len(seconds)} seconds, up to {peak_rps} requests/s, worst p99 {worst:.3g} ms, "
        f"{sum(s.failed + s.unknown for s in seconds)} not ok; "
        + (
            "faults: " + ", ".join(f"{w.name} {w.start_s:g}-{w.end_s:g}s" for w in windows)
            if windows
            else "no fault"
        )
    )
    return chart(f"{phase} over time: requests/s, latency, not ok", desc, bottom + 30, body)


def _line(
    x: Scale, y: Scale, seconds: Sequence[Second], value: Callable[[Second], float | None], cls: str
) -> str:
    """A polyline per run of seconds that have a value: a second with no request breaks it."""
    runs: list[list[str]] = [[]]
    for s in seconds:
        v = value(s)
        if v is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{x(s.t_s + 0.5):.1f},{y(float(v)):.1f}")
    return "".join(
        f'<polyline points="{" ".join(run)}" class="line thin {cls}"/>'
        if len(run) > 1
        else f'<circle cx="{run[0].split(",")[0]}" cy="{run[0].split(",")[1]}" r="2" class="dot {cls}"/>'
        for run in runs
        if run
    )


def _bars(x: Scale, y: Scale, seconds: Sequence[Second]) -> list[str]:
    out = []
    width = max(x(1) - x(0) - 1, 1.0)
    for s in seconds:
        base = y(0)
        for count, cls in ((s.failed, "bar-failed"), (s.unknown, "bar-unknown")):
            if count:
                top = base - (y(0) - y(count))
                out.append(
                    f'<rect x="{x(s.t_s):.1f}" y="{top:.1f}" width="{width:.1f}" '
                    f'height="{base - top:.1f}" class="{cls}"><title>{escape(f"{s.t_s}s: {count} {cls[4:]}")}</title></rect>'
                )
                base = top
    return out
