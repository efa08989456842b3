"""Inline SVG charts for the HTML report, drawn from scratch: no library, no script.

Every chart is a string of SVG with ``role="img"``, a ``<title>`` and a
``<desc>`` (what a screen reader says), and colours from CSS classes so the
page's stylesheet (light and dark) decides them. Every piece of text is
escaped here, because labels come from manifests and payloads are hostile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from heisen._serialised import JsonObject
from heisen.outputs import TimelineEntry, TrialLine
from heisen.report._calibration import CalibrationView
from heisen.report._ladder import UNMEASURED, Rung, format_rate
from heisen.schema import LOAD_PHASES

__all__ = [
    "burst_chart",
    "calibration_chart",
    "history_chart",
    "ladder_chart",
    "latency_chart",
    "p99_chart",
    "per_operation_chart",
    "timeline_chart",
    "trial_strips",
]

WIDTH = 1000
PERCENTILES = ("p50", "p75", "p90", "p95", "p99", "p99.9", "max")


@dataclass(frozen=True, slots=True)
class Scale:
    """Maps a domain onto pixels, linearly or by decades (``log``)."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def __call__(self, value: float) -> float:
        if self.log:
            value = max(value, self.lo)
            fraction = (math.log10(value) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo)
            )
        else:
            fraction = (value - self.lo) / ((self.hi - self.lo) or 1.0)
        return self.start + fraction * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            return [
                10.0**k for k in range(first, last + 1) if self.lo <= 10.0**k <= self.hi * 1.0001
            ]
        step = _nice_step((self.hi - self.lo) / 5)
        count = int((self.hi - self.lo) / step + 1e-9)
        return [self.lo + i * step for i in range(count + 1)]


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _svg(title: str, desc: str, height: float, body: Iterable[str], width: int = WIDTH) -> str:
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
    )
    return head + "".join(body) + "</svg>"


def _text(x: float, y: float, text: str, cls: str = "label", anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def ladder_scale(rungs: Sequence[Rung], start: float, end: float) -> Scale:
    """Log scale when the measured rates span more than ~1.5 decades, else linear from 0."""
    values = [v for r in rungs if r.rate is not None for v in (r.rate, *(r.ci95 or ()))]
    positive = [v for v in values if v > 0]
    top = max(values, default=0.0)
    if positive and top / min(positive) > 30:
        lo = 10.0 ** math.floor(math.log10(min(positive)))
        return Scale(lo, 1.0, start, end, log=True)
    hi = min(1.0, max(top * 1.15, 0.01))
    step = _nice_step(hi / 5)
    return Scale(0.0, math.ceil(hi / step - 1e-9) * step, start, end)


def ladder_chart(rungs: Sequence[Rung]) -> str:
    """Horizontal bars of violation rate per phase with 95% CI whiskers."""
    left, right, row, top = 90, WIDTH - 190, 36, 16
    scale = ladder_scale(rungs, left, right)
    height = top + row * len(rungs) + 34
    body = []
    for tick in scale.ticks():
        x = scale(tick)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 30}" class="grid"/>'
        )
        body.append(_text(x, height - 14, format_rate(tick), "tick", "middle"))
    for i, rung in enumerate(rungs):
        y = top + i * row
        mid = y + row / 2
        body.append(_text(left - 10, mid + 4, rung.phase, "label strong", "end"))
        if rung.status in UNMEASURED:
            why = rung.note if len(rung.note) <= 100 else rung.note[:99] + "…"
            body.append(_text(left + 6, mid + 4, f"{rung.status}: {why}", f"muted {rung.status}"))
            continue
        if rung.rate is None:
            body.append(_text(left + 6, mid + 4, f"not measured ({rung.status})", "muted"))
            continue
        x0, x1 = scale(scale.lo), scale(rung.rate)
        cls = (
            "bar predicted"
            if rung.phase == "predict"
            else f"bar {'zero' if rung.rate == 0 else 'rate'}"
        )
        body.append(
            f'<rect x="{x0:.1f}" y="{y + 8}" width="{max(x1 - x0, 2):.1f}" height="{row - 16}" '
            f'class="{cls}"><title>{escape(rung.label())}</title></rect>'
        )
        if rung.ci95:
            a, b = scale(rung.ci95[0]), scale(rung.ci95[1])
            body.append(
                f'<path d="M{a:.1f},{mid:.1f}H{b:.1f}M{a:.1f},{mid - 7:.1f}V{mid + 7:.1f}'
                f'M{b:.1f},{mid - 7:.1f}V{mid + 7:.1f}" class="whisker"/>'
            )
        label = format_rate(rung.rate)
        if rung.ci95:
            label += f"  [{format_rate(rung.ci95[0])}, {format_rate(rung.ci95[1])}]"
        body.append(_text(right + 8, mid + 4, label, "value"))
    axis = "log scale" if scale.log else "linear scale"
    desc = "; ".join(
        f"{r.phase}: {r.status} ({r.note})"
        if r.status in UNMEASURED
        else f"{r.phase}: {format_rate(r.rate or 0.0)}"
        + (f" (95% CI {format_rate(r.ci95[0])} to {format_rate(r.ci95[1])})" if r.ci95 else "")
        for r in rungs
        if r.rate is not None or r.status in UNMEASURED
    )
    return _svg(
        f"Reproduction ladder: violation rate per phase ({axis})",
        desc or "no rates measured",
        height,
        body,
    )


def _unmeasured_row(rung: Rung, x: float, y: float, what: str) -> str:
    """The text a row shows in place of a figure: why the phase has none, never a 0."""
    if rung.status in UNMEASURED:
        why = rung.note if len(rung.note) <= 90 else rung.note[:89] + "…"
        return _text(x, y, f"{rung.status}: {why}", f"muted {rung.status}")
    return _text(x, y, f"{what} not measured ({rung.status})", "muted")


def _whisker(a: float, b: float, mid: float) -> str:
    return (
        f'<path d="M{a:.1f},{mid:.1f}H{b:.1f}M{a:.1f},{mid - 7:.1f}V{mid + 7:.1f}'
        f'M{b:.1f},{mid - 7:.1f}V{mid + 7:.1f}" class="whisker"/>'
    )


def per_operation_chart(rungs: Sequence[Rung]) -> str:
    """The invariant's per-operation rate (its `severity:`) per phase: a dot at the mean and
    whiskers over its 95% interval, on its own axis (it is not a share of trials)."""
    left, right, row, top = 90, WIDTH - 230, 36, 16
    values = [
        v
        for r in rungs
        if r.per_operation is not None
        for v in (r.per_operation, *(r.per_operation_ci95 or ()))
    ]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    step = _nice_step(((hi - lo) * 1.15 or 0.01) / 5)
    scale = Scale(
        math.floor(lo / step + 1e-9) * step,
        math.ceil(hi * 1.15 / step - 1e-9) * step or step,
        left,
        right,
    )
    height = top + row * len(rungs) + 34
    body = []
    for tick in scale.ticks():
        x = scale(tick)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 30}" class="grid"/>'
        )
        body.append(_text(x, height - 14, f"{tick:.3g}", "tick", "middle"))
    for i, rung in enumerate(rungs):
        mid = top + i * row + row / 2
        body.append(_text(left - 10, mid + 4, rung.phase, "label strong", "end"))
        if rung.per_operation is None:
            body.append(_unmeasured_row(rung, left + 6, mid + 4, "per-operation rate"))
            continue
        label = f"{rung.per_operation:.3g} per op"
        if rung.per_operation_ci95 is not None:
            lo_ci, hi_ci = rung.per_operation_ci95
            body.append(_whisker(scale(lo_ci), scale(hi_ci), mid))
            label += f"  [{lo_ci:.3g}\N{EN DASH}{hi_ci:.3g}]"
        body.append(
            f'<circle cx="{scale(rung.per_operation):.1f}" cy="{mid:.1f}" r="5" class="dot perop">'
            f"<title>{escape(f'{rung.phase}: {label}')}</title></circle>"
        )
        body.append(_text(right + 8, mid + 4, label, "value"))
    desc = "; ".join(
        f"{r.phase}: "
        + (
            "not measured"
            if r.per_operation is None
            else f"{r.per_operation:.3g} per operation"
            + (
                f" (95% CI {r.per_operation_ci95[0]:.3g} to {r.per_operation_ci95[1]:.3g})"
                if r.per_operation_ci95
                else ""
            )
        )
        for r in rungs
    )
    return _svg("Per-operation rate per phase (the invariant's severity)", desc, height, body)


def burst_chart(rungs: Sequence[Rung]) -> str:
    """The smallest burst that reproduced the race per phase, on a log2 axis of burst sizes:
    a bar to the smallest burst (hollow and dashed to the largest tried when none did), a
    marker for each burst the sweep tried (filled: reproduced in at least half its trials)."""
    left, right, row, top = 90, WIDTH - 230, 36, 16
    sizes = [
        float(v)
        for r in rungs
        if r.burst is not None
        for v in (r.burst.smallest, r.burst.largest, *(t.requests for t in r.burst.tried))
        if v
    ]
    scale = Scale(1.0, 2.0 ** math.ceil(math.log2(max([4.0, *sizes]))), left, right, log=True)
    height = top + row * len(rungs) + 34
    body = []
    exponent = 0
    while 2.0**exponent <= scale.hi:
        x = scale(2.0**exponent)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 30}" class="grid"/>'
        )
        body.append(_text(x, height - 14, f"{2**exponent}", "tick", "middle"))
        exponent += 1
    for i, rung in enumerate(rungs):
        y = top + i * row
        mid = y + row / 2
        body.append(_text(left - 10, mid + 4, rung.phase, "label strong", "end"))
        burst = rung.burst
        if burst is None:
            body.append(_unmeasured_row(rung, left + 6, mid + 4, "smallest burst"))
            continue
        reach = burst.smallest if burst.smallest is not None else burst.largest
        cls = "bar predicted" if rung.phase == "predict" else "bar rate"
        if burst.smallest is None:
            cls = "bar none"
        label = burst.label().removeprefix("burst ")
        if burst.smallest is not None:
            label = f"smallest burst {label}"
        if reach:
            x1 = scale(float(reach))
            body.append(
                f'<rect x="{left:.1f}" y="{y + 10}" width="{max(x1 - left, 2):.1f}" height="{row - 20}" '
                f'class="{cls}"><title>{escape(f"{rung.phase}: {label}")}</title></rect>'
            )
        for tried in burst.tried:
            hit = tried.reproduced
            tip = f"{rung.phase}: burst {tried.requests}, {tried.violations} of {tried.trials} trials violated"
            body.append(
                f'<circle cx="{scale(float(max(tried.requests, 1))):.1f}" cy="{mid:.1f}" r="4.5" '
                f'class="try {"hit" if hit else "miss"}"><title>{escape(tip)}</title></circle>'
            )
        body.append(_text(right + 8, mid + 4, label, "value"))
    desc = "; ".join(
        f"{r.phase}: "
        + (
            "not measured"
            if r.burst is None
            else r.burst.label().removeprefix("burst ")
            + (
                " (tried "
                + ", ".join(f"{t.requests}: {t.violations}/{t.trials}" for t in r.burst.tried)
                + ")"
                if r.burst.tried
                else ""
            )
        )
        for r in rungs
    )
    return _svg("Smallest reproducing burst per phase (log2 scale)", desc, height, body)


def calibration_chart(view: CalibrationView) -> str:
    """predict's calibration: at each load stress ran, the predicted rate (hollow) beside the
    observed one (filled), joined by a line; loads evenly spaced, rates on a linear axis."""
    left, right, top, bottom = 70, WIDTH - 30, 36, 220
    points = sorted(view.points, key=lambda p: p.load)
    top_rate = max([float(v) for p in points for v in (p.predicted, p.observed)] + [0.0])
    hi = min(1.0, max(top_rate * 1.15, 0.01))
    step = _nice_step(hi / 4)
    y = Scale(0.0, math.ceil(hi / step - 1e-9) * step, bottom, top)
    slot = (right - left) / max(len(points), 1)
    body = [
        f'<circle cx="{left + 8}" cy="14" r="5" class="pt predicted"/>',
        _text(left + 18, 18, "predicted", "label"),
        f'<circle cx="{left + 118}" cy="14" r="5" class="pt observed"/>',
        _text(left + 128, 18, "observed", "label"),
    ]
    for tick in y.ticks():
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, format_rate(tick), "tick", "end"))
    phases = {point.phase for point in points}
    for i, point in enumerate(points):
        x = left + slot * (i + 0.5)
        predicted, observed = float(point.predicted), float(point.observed)
        ratio = view.point_ratio(point)
        said = f" (predicted/observed {ratio:.3g})" if ratio is not None else ""
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(predicted):.1f}" y2="{y(observed):.1f}" class="grid"/>'
        )
        body.append(
            f'<circle cx="{x - 6:.1f}" cy="{y(predicted):.1f}" r="6" class="pt predicted">'
            f"<title>{escape(f'load {point.load}: predicted {format_rate(predicted)}')}</title></circle>"
        )
        body.append(
            f'<circle cx="{x + 6:.1f}" cy="{y(observed):.1f}" r="6" class="pt observed">'
            f"<title>{escape(f'load {point.load}: observed {format_rate(observed)}{said}')}</title></circle>"
        )
        where = f" ({point.phase})" if point.phase and len(phases) > 1 else ""
        body.append(_text(x, bottom + 18, f"{point.load} requests{where}", "tick", "middle"))
    verdict = (
        ""
        if view.within_2x is None
        else f"; within 2x at every load: {'yes' if view.within_2x else 'no'}"
    )
    overall = f"; overall predicted/observed {view.ratio:.3g}" if view.ratio is not None else ""
    desc = (
        "; ".join(
            f"load {p.load}: predicted {format_rate(float(p.predicted))}, "
            f"observed {format_rate(float(p.observed))}"
            for p in points
        )
        + overall
        + verdict
        + (f"; {view.burst.line()}" if view.burst is not None else "")
    )
    on = f" on {view.target}" if view.target else ""
    return _svg(
        f"predict calibrated{on}: predicted vs observed violation rate per load",
        desc,
        bottom + 30,
        body,
    )


def _palette(names: Sequence[str]) -> dict[str, str]:
    return {name: f"s-{name}" if name in LOAD_PHASES else "s-other" for name in names}


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    colours = _palette(names)
    out = []
    for i, name in enumerate(names):
        cx = x + i * 110
        out.append(
            f'<rect x="{cx:.0f}" y="{y - 9:.0f}" width="12" height="12" class="swatch {colours[name]}"/>'
        )
        out.append(_text(cx + 17, y + 1, name, "label"))
    return out


def latency_chart(series: dict[str, dict[str, float]]) -> str:
    """Latency percentiles (log ms) per phase: one line per phase over p50…max."""
    left, right, top, bottom = 64, WIDTH - 20, 30, 250
    values = [v for s in series.values() for v in s.values() if v and v > 0]
    lo = 10.0 ** math.floor(math.log10(min(values, default=1.0)))
    hi = 10.0 ** math.ceil(math.log10(max(values, default=10.0)))
    y = Scale(lo, max(hi, lo * 10), bottom, top, log=True)
    step = (right - left) / (len(PERCENTILES) - 1)
    body = _legend(list(series), left, 14)
    for tick in y.ticks():
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, f"{_number(tick)} ms", "tick", "end"))
    for i, name in enumerate(PERCENTILES):
        body.append(_text(left + i * step, bottom + 18, name, "tick", "middle"))
    colours = _palette(list(series))
    for phase, points in series.items():
        xy = [(left + i * step, y(points[p])) for i, p in enumerate(PERCENTILES) if points.get(p)]
        body.append(
            f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in xy)}" '
            f'class="line {colours[phase]}"/>'
        )
        for (a, b), p in zip(xy, (p for p in PERCENTILES if points.get(p)), strict=True):
            body.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" class="dot {colours[phase]}">'
                f"<title>{escape(f'{phase} {p}: {points[p]:g} ms')}</title></circle>"
            )
    desc = "; ".join(
        f"{phase}: " + ", ".join(f"{p} {v:g} ms" for p, v in pts.items())
        for phase, pts in series.items()
    )
    return _svg("Latency percentiles per phase (milliseconds, log scale)", desc, bottom + 30, body)


def p99_chart(series: Mapping[str, Sequence[TrialLine]]) -> str:
    """p99 latency of each trial, one line per phase; violating trials ringed."""
    left, right, top, bottom = 64, WIDTH - 20, 30, 210
    trials = [
        (t.trial, float(t.p99_ms)) for rows in series.values() for t in rows if t.p99_ms is not None
    ]
    last = max((trial for trial, _ in trials), default=1)
    x = Scale(1, max(last, 2), left, right)
    top_ms = max((p99 for _, p99 in trials), default=1.0)
    step = _nice_step(top_ms * 1.1 / 4)
    y = Scale(0, math.ceil(top_ms * 1.1 / step) * step or 1.0, bottom, top)
    body = _legend(list(series), left, 14)
    for tick in y.ticks():
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, f"{_number(tick)} ms", "tick", "end"))
    for tick in Scale(0, last, left, right).ticks():
        if tick >= 1:
            body.append(_text(x(tick), bottom + 18, f"{tick:g}", "tick", "middle"))
    body.append(_text(right, bottom + 30, "trial", "tick", "end"))
    colours = _palette(list(series))
    for phase, rows in series.items():
        pts = [(x(t.trial), y(float(t.p99_ms)), t) for t in rows if t.p99_ms is not None]
        body.append(
            f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b, _ in pts)}" '
            f'class="line thin {colours[phase]}"/>'
        )
        for a, b, t in pts:
            if t.violated:
                tip = f"{phase} trial {t.trial}: p99 {float(t.p99_ms or 0):g} ms, violated"
                body.append(
                    f'<circle cx="{a:.1f}" cy="{b:.1f}" r="5" class="violated-ring">'
                    f"<title>{escape(tip)}</title></circle>"
                )
    desc = "; ".join(
        f"{phase}: {len(rows)} trials, max p99 "
        f"{max((float(t.p99_ms or 0) for t in rows), default=0):g} ms"
        for phase, rows in series.items()
    )
    return _svg("p99 latency per trial (violating trials ringed)", desc, bottom + 34, body)


def trial_strips(series: Mapping[str, Sequence[TrialLine]]) -> str:
    """One strip per phase, one cell per trial: red where an invariant was violated."""
    left, right, row = 90, WIDTH - 130, 28
    body = []
    for i, (phase, rows) in enumerate(series.items()):
        y = 8 + i * row
        body.append(_text(left - 10, y + 15, phase, "label strong", "end"))
        cell = (right - left) / max(len(rows), 1)
        for j, t in enumerate(rows):
            names = ", ".join(str(v) for v in t.violations)
            tip = f"trial {t.trial}: " + (f"violated {names}" if t.violated else "held")
            cls = "cell bad" if t.violated else "cell ok"
            body.append(
                f'<rect x="{left + j * cell:.2f}" y="{y}" width="{max(cell - (1 if cell > 3 else 0), 0.5):.2f}" '
                f'height="20" class="{cls}"><title>{escape(tip)}</title></rect>'
            )
        bad = sum(1 for t in rows if t.violated)
        body.append(_text(right + 8, y + 15, f"{bad}/{len(rows)} violated", "value"))
    desc = "; ".join(
        f"{phase}: {sum(1 for t in rows if t.violated)} of {len(rows)} trials violated"
        for phase, rows in series.items()
    )
    return _svg("Violations per trial, one strip per phase", desc, 12 + row * len(series), body)


def timeline_chart(events: Sequence[TimelineEntry], duration_s: float | None) -> str:
    """Chaos events on a time axis; labels stagger over three rows so they do not collide."""
    left, right, axis = 30, WIDTH - 30, 120
    end = max([float(e.t_s or 0) for e in events] + [duration_s or 0.0, 1.0])
    x = Scale(0, end, left, right)
    body = [f'<line x1="{left}" x2="{right}" y1="{axis}" y2="{axis}" class="axis"/>']
    for tick in x.ticks():
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{axis}" y2="{axis + 5}" class="axis"/>'
        )
        body.append(_text(x(tick), axis + 18, f"{tick:g}s", "tick", "middle"))
    for i, event in enumerate(events):
        px, level = x(float(event.t_s or 0)), 22 + (i % 3) * 30
        kind = event.event
        cls = (
            "ev-check"
            if "steady" in kind
            else "ev-heal"
            if kind in ("heal", "restart", "recover")
            else "ev-fault"
        )
        body.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{level + 4}" y2="{axis}" class="stem {cls}"/>'
        )
        tip = f"{event.t_s}s {kind}: {event.detail}"
        body.append(
            f'<circle cx="{px:.1f}" cy="{axis}" r="5" class="{cls}"><title>{escape(tip)}</title></circle>'
        )
        anchor = "start" if px < right - 150 else "end"
        body.append(
            _text(
                px + (4 if anchor == "start" else -4),
                level,
                f"{kind} @{event.t_s}s",
                "label",
                anchor,
            )
        )
    desc = "; ".join(f"{e.t_s}s {e.event}: {e.detail}" for e in events)
    return _svg("Chaos timeline: what was injected when", desc, axis + 28, body)


def history_chart(operations: Sequence[JsonObject]) -> str:
    """The minimal violating history: a lane per process, a bar from invoke to completion."""
    calls = _calls(operations)
    processes = sorted(
        {str(c["process"]) for c in calls}, key=lambda p: (not p.isdigit(), p.zfill(8))
    )
    left, right, row = 60, WIDTH - 20, 30
    t0 = min((c["start"] for c in calls), default=0)
    t1 = max((c["end"] if c["end"] is not None else c["start"] for c in calls), default=1)
    span = max(t1 - t0, 1)
    x = Scale(0, span * 1.08 / 1e6, left, right)
    height = 10 + row * len(processes) + 30
    body = []
    for tick in x.ticks():
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="6" y2="{height - 26}" class="grid"/>'
        )
        body.append(_text(x(tick), height - 10, f"{tick:g} ms", "tick", "middle"))
    for lane, process in enumerate(processes):
        y = 10 + lane * row
        body.append(_text(left - 8, y + 15, f"p{process}", "label strong", "end"))
        for call in (c for c in calls if str(c["process"]) == process):
            a = x((call["start"] - t0) / 1e6)
            b = x(span * 1.08 / 1e6) if call["end"] is None else x((call["end"] - t0) / 1e6)
            kind = call["type"]
            body.append(
                f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 3):.1f}" height="20" rx="3" class="op op-{kind}">'
                f"<title>{escape(call['tip'])}</title></rect>"
            )
            body.append(_text(a + 5, y + 14, call["label"], "op-label"))
    desc = "; ".join(call["tip"] for call in calls)
    return _svg(
        "Minimal violating history: one lane per process, invoke to completion", desc, height, body
    )


def _calls(operations: Sequence[JsonObject]) -> list[JsonObject]:
    """Pair each invoke with the next completion on the same process (unpaired: unknown, open-ended)."""
    open_calls: dict[str, JsonObject] = {}
    calls: list[JsonObject] = []
    for op in operations:
        process = str(op.get("process"))
        time = int(op.get("time") or 0)
        if op.get("type") == "invoke":
            call = {
                "process": process,
                "start": time,
                "end": None,
                "type": "info",
                "f": str(op.get("f", "")),
                "key": op.get("key"),
                "value": op.get("value"),
            }
            open_calls[process] = call
            calls.append(call)
        elif process in open_calls:
            call = open_calls.pop(process)
            call["type"] = str(op.get("type"))
            call["end"] = None if op.get("type") == "info" else time
            if op.get("value") is not None:
                call["value"] = op.get("value")
    for call in calls:
        value = "" if call["value"] is None else f" {call['value']}"
        call["label"] = f"{call['f'][:1]}{value}"[:18]
        outcome = {"ok": "ok", "fail": "failed", "info": "unknown outcome"}.get(
            call["type"], call["type"]
        )
        key = f" {call['key']}" if call["key"] is not None else ""
        call["tip"] = f"p{call['process']} {call['f']}{key}{value}: {outcome}"
    return calls
