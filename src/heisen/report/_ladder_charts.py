"""The reproduction ladder's charts: the rate per phase, the per-operation rate, the smallest
reproducing burst, and predict's calibrated points beside the observed rates.

Drawn with `_svg`'s primitives, in its conventions (``role="img"``, a ``<title>`` and a
``<desc>``, classes for colours, every text escaped). A row with no figure says why ("not
measured", or the phase's inconclusive or error reason), never draws a 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from heisen.report._calibration import CalibrationView
from heisen.report._ladder import UNMEASURED, Rung, format_rate
from heisen.report._svg import WIDTH, Scale, chart, nice_step, text_at

__all__ = ["burst_chart", "calibration_chart", "ladder_chart", "per_operation_chart"]


def ladder_scale(rungs: Sequence[Rung], start: float, end: float) -> Scale:
    """Log scale when the measured rates span more than ~1.5 decades, else linear from 0."""
    values = [v for r in rungs if r.rate is not None for v in (r.rate, *(r.ci95 or ()))]
    positive = [v for v in values if v > 0]
    top = max(values, default=0.0)
    if positive and top / min(positive) > 30:
        lo = 10.0 ** math.floor(math.log10(min(positive)))
        return Scale(lo, 1.0, start, end, log=True)
    hi = min(1.0, max(top * 1.15, 0.01))
    step = nice_step(hi / 5)
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
        body.append(text_at(x, height - 14, format_rate(tick), "tick", "middle"))
    for i, rung in enumerate(rungs):
        y = top + i * row
        mid = y + row / 2
        body.append(text_at(left - 10, mid + 4, rung.phase, "label strong", "end"))
        if rung.status in UNMEASURED:
            why = rung.note if len(rung.note) <= 100 else rung.note[:99] + "…"
            body.append(text_at(left + 6, mid + 4, f"{rung.status}: {why}", f"muted {rung.status}"))
            continue
        if rung.rate is None:
            body.append(text_at(left + 6, mid + 4, f"not measured ({rung.status})", "muted"))
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
        body.append(text_at(right + 8, mid + 4, label, "value"))
    axis = "log scale" if scale.log else "linear scale"
    desc = "; ".join(
        f"{r.phase}: {r.status} ({r.note})"
        if r.status in UNMEASURED
        else f"{r.phase}: {format_rate(r.rate or 0.0)}"
        + (f" (95% CI {format_rate(r.ci95[0])} to {format_rate(r.ci95[1])})" if r.ci95 else "")
        for r in rungs
        if r.rate is not None or r.status in UNMEASURED
    )
    return chart(
        f"Reproduction ladder: violation rate per phase ({axis})",
        desc or "no rates measured",
        height,
        body,
    )


def _unmeasured_row(rung: Rung, x: float, y: float, what: str) -> str:
    """The text a row shows in place of a figure: why the phase has none, never a 0."""
    if rung.status in UNMEASURED:
        why = rung.note if len(rung.note) <= 90 else rung.note[:89] + "…"
        return text_at(x, y, f"{rung.status}: {why}", f"muted {rung.status}")
    return text_at(x, y, f"{what} not measured ({rung.status})", "muted")


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
    step = nice_step(((hi - lo) * 1.15 or 0.01) / 5)
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
        body.append(text_at(x, height - 14, f"{tick:.3g}", "tick", "middle"))
    for i, rung in enumerate(rungs):
        mid = top + i * row + row / 2
        body.append(text_at(left - 10, mid + 4, rung.phase, "label strong", "end"))
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
        body.append(text_at(right + 8, mid + 4, label, "value"))
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
    return chart("Per-operation rate per phase (the invariant's severity)", desc, height, body)


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
        body.append(text_at(x, height - 14, f"{2**exponent}", "tick", "middle"))
        exponent += 1
    for i, rung in enumerate(rungs):
        y = top + i * row
        mid = y + row / 2
        body.append(text_at(left - 10, mid + 4, rung.phase, "label strong", "end"))
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
        body.append(text_at(right + 8, mid + 4, label, "value"))
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
    return chart("Smallest reproducing burst per phase (log2 scale)", desc, height, body)


def calibration_chart(view: CalibrationView) -> str:
    """predict's calibration: at each load stress ran, the predicted rate (hollow) beside the
    observed one (filled), joined by a line; loads evenly spaced, rates on a linear axis."""
    left, right, top, bottom = 70, WIDTH - 30, 36, 220
    points = sorted(view.points, key=lambda p: p.load)
    top_rate = max([float(v) for p in points for v in (p.predicted, p.observed)] + [0.0])
    hi = min(1.0, max(top_rate * 1.15, 0.01))
    step = nice_step(hi / 4)
    y = Scale(0.0, math.ceil(hi / step - 1e-9) * step, bottom, top)
    slot = (right - left) / max(len(points), 1)
    body = [
        f'<circle cx="{left + 8}" cy="14" r="5" class="pt predicted"/>',
        text_at(left + 18, 18, "predicted", "label"),
        f'<circle cx="{left + 118}" cy="14" r="5" class="pt observed"/>',
        text_at(left + 128, 18, "observed", "label"),
    ]
    for tick in y.ticks():
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
        )
        body.append(text_at(left - 6, y(tick) + 4, format_rate(tick), "tick", "end"))
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
        body.append(text_at(x, bottom + 18, f"{point.load} requests{where}", "tick", "middle"))
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
    return chart(
        f"predict calibrated{on}: predicted vs observed violation rate per load",
        desc,
        bottom + 30,
        body,
    )
