"""Inline SVG charts for the HTML report, drawn from scratch: no library, no script.

The reproduction ladder's charts (`_ladder_charts`) are drawn with the same
primitives: `chart` (the ``<svg>`` with its title and description), `text_at`,
`Scale` and `nice_step`.

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
from heisen.outputs import TrialLine
from heisen.schema import LOAD_PHASES

__all__ = [
    "PERCENTILES",
    "WIDTH",
    "Scale",
    "chart",
    "history_chart",
    "latency_chart",
    "nice_step",
    "p99_chart",
    "text_at",
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

    def ticks(self, *, integer: bool = False) -> list[float]:
        """Round ticks inside the domain: decades when ``log``, else multiples of 1, 2 or 5
        times 10^k (whole numbers when ``integer``)."""
        if self.log:
            first, last = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            return [
                10.0**k for k in range(first, last + 1) if self.lo <= 10.0**k <= self.hi * 1.0001
            ]
        step = nice_step((self.hi - self.lo) / 5, integer=integer)
        first = math.ceil(self.lo / step - 1e-9)
        last = math.floor(self.hi / step + 1e-9)
        return [round(k * step, 12) for k in range(first, last + 1)]


def nice_step(raw: float, *, integer: bool = False) -> float:
    """The smallest round step (1, 2 or 5 times 10^k) at least ``raw``; at least 1 for counts."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    return max(step, 1.0) if integer else step


def chart(title: str, desc: str, height: float, body: Iterable[str], width: int = WIDTH) -> str:
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
    )
    return head + "".join(body) + "</svg>"


def text_at(x: float, y: float, text: str, cls: str = "label", anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


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
        out.append(text_at(cx + 17, y + 1, name, "label"))
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
        body.append(text_at(left - 6, y(tick) + 4, f"{_number(tick)} ms", "tick", "end"))
    for i, name in enumerate(PERCENTILES):
        body.append(text_at(left + i * step, bottom + 18, name, "tick", "middle"))
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
    return chart("Latency percentiles per phase (milliseconds, log scale)", desc, bottom + 30, body)


def p99_chart(series: Mapping[str, Sequence[TrialLine]]) -> str:
    """p99 latency of each trial, one line per phase; violating trials ringed."""
    left, right, top, bottom = 64, WIDTH - 20, 30, 210
    trials = [
        (t.trial, float(t.p99_ms)) for rows in series.values() for t in rows if t.p99_ms is not None
    ]
    last = max((trial for trial, _ in trials), default=1)
    x = Scale(1, max(last, 2), left, right)
    top_ms = max((p99 for _, p99 in trials), default=1.0)
    step = nice_step(top_ms * 1.1 / 4)
    y = Scale(0, math.ceil(top_ms * 1.1 / step) * step or 1.0, bottom, top)
    body = _legend(list(series), left, 14)
    for tick in y.ticks():
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
        )
        body.append(text_at(left - 6, y(tick) + 4, f"{_number(tick)} ms", "tick", "end"))
    for tick in Scale(0, last, left, right).ticks(integer=True):
        if tick >= 1:
            body.append(text_at(x(tick), bottom + 18, f"{tick:g}", "tick", "middle"))
    body.append(text_at(right, bottom + 36, "trial", "tick", "end"))
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
    return chart("p99 latency per trial (violating trials ringed)", desc, bottom + 42, body)


def trial_strips(series: Mapping[str, Sequence[TrialLine]]) -> str:
    """One strip per phase, one cell per trial: red where an invariant was violated."""
    left, right, row = 90, WIDTH - 130, 28
    body = []
    for i, (phase, rows) in enumerate(series.items()):
        y = 8 + i * row
        body.append(text_at(left - 10, y + 15, phase, "label strong", "end"))
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
        body.append(text_at(right + 8, y + 15, f"{bad}/{len(rows)} violated", "value"))
    desc = "; ".join(
        f"{phase}: {sum(1 for t in rows if t.violated)} of {len(rows)} trials violated"
        for phase, rows in series.items()
    )
    return chart("Violations per trial, one strip per phase", desc, 12 + row * len(series), body)


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
        body.append(text_at(x(tick), height - 10, f"{tick:g} ms", "tick", "middle"))
    for lane, process in enumerate(processes):
        y = 10 + lane * row
        body.append(text_at(left - 8, y + 15, f"p{process}", "label strong", "end"))
        for call in (c for c in calls if str(c["process"]) == process):
            a = x((call["start"] - t0) / 1e6)
            b = x(span * 1.08 / 1e6) if call["end"] is None else x((call["end"] - t0) / 1e6)
            kind = call["type"]
            body.append(
                f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 3):.1f}" height="20" rx="3" class="op op-{kind}">'
                f"<title>{escape(call['tip'])}</title></rect>"
            )
            body.append(text_at(a + 5, y + 14, call["label"], "op-label"))
    desc = "; ".join(call["tip"] for call in calls)
    return chart(
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
