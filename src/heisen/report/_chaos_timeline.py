"""The chaos timeline as lanes: one for the run's own events (load, steady-state checks,
rollback), one per fault, each fault's active windows drawn as bars.

An entry belongs to the fault its ``experiment`` names; entries that name none
(``removed <experiment>: …``, ``recovered inventory-0 …``) are matched by the
experiment's name at the start of their detail, then by the target their
detail names, then to the fault still open. Marks carry their text in
tooltips; the only text drawn is the lane names, the legend and the axis, so
no two labels can meet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from heisen.outputs import TimelineEntry
from heisen.report._svg import WIDTH, Scale, chart, text_at

__all__ = [
    "FaultWindow",
    "Lane",
    "fault_windows",
    "kind_of",
    "lanes",
    "load_start",
    "timeline_chart",
]

RECOVERY = frozenset({"recovered", "removed", "restart", "heal", "recover"})
CHECKS = frozenset({"steady-state", "probe"})
RUN = frozenset({"load", "rollback", "rollback-error", "experiment-error", "ready", "replicas"})
RUN_LANE = "steady state, load"


def kind_of(entry: TimelineEntry) -> str:
    """``fault``, ``recovery``, ``check`` or ``run``: the class (and colour) of its mark."""
    event = entry.event
    if event in RECOVERY:
        return "recovery"
    if event in CHECKS:
        return "check-fail" if _failed(entry.detail) else "check"
    if event in RUN or event.startswith(("rollback", "wait")):
        return "run"
    return "fault"


def _failed(detail: str) -> bool:
    words = detail.replace(":", " ").lower().split()
    return "fail" in words or "failed" in words


@dataclass(frozen=True, slots=True)
class FaultWindow:
    name: str
    start_s: float
    end_s: float


@dataclass
class Lane:
    name: str
    entries: list[TimelineEntry] = field(default_factory=list)

    def windows(self, end_s: float) -> list[FaultWindow]:
        """Each fault to the recovery that follows it (or to ``end_s`` when none does)."""
        out: list[FaultWindow] = []
        open_at: list[float] = []
        for entry in self.entries:
            kind = kind_of(entry)
            if kind == "fault" and not open_at:
                open_at.append(float(entry.t_s))
            elif kind == "recovery" and open_at:
                out.append(FaultWindow(self.name, open_at.pop(), float(entry.t_s)))
        out += [FaultWindow(self.name, start, max(start, end_s)) for start in open_at]
        return out


def lanes(events: Sequence[TimelineEntry]) -> list[Lane]:
    """The run's lane first, then one lane per fault in the order they first happened."""
    run = Lane(RUN_LANE)
    faults: dict[str, Lane] = {}
    for entry in sorted(events, key=lambda e: float(e.t_s)):
        kind = kind_of(entry)
        if kind in ("check", "check-fail", "run"):
            run.entries.append(entry)
            continue
        name = entry.experiment or _named(entry, faults) or _target(entry, faults)
        if name is None and kind == "recovery":
            name = _open(faults)
        if name is None:
            name = f"{entry.event} {entry.detail}".strip()
        faults.setdefault(name, Lane(name)).entries.append(entry)
    return [run, *faults.values()]


def _named(entry: TimelineEntry, faults: dict[str, Lane]) -> str | None:
    head = entry.detail.partition(": ")[0]
    return head if head in faults else None


def _target(entry: TimelineEntry, faults: dict[str, Lane]) -> str | None:
    words = entry.detail.split()
    target = words[0] if words else ""
    if not target:
        return None
    for lane in reversed(faults.values()):
        if any(target in e.detail.split() for e in lane.entries if kind_of(e) == "fault"):
            return lane.name
    return None


def _open(faults: dict[str, Lane]) -> str | None:
    for lane in reversed(faults.values()):
        if lane.entries and kind_of(lane.entries[-1]) == "fault":
            return lane.name
    return None


def fault_windows(events: Sequence[TimelineEntry], end_s: float) -> list[FaultWindow]:
    """When each fault was active, in seconds since the phase started."""
    return [w for lane in lanes(events)[1:] for w in lane.windows(end_s)]


def load_start(events: Sequence[TimelineEntry]) -> float:
    """When the chaos load started (its first request), in seconds since the phase started."""
    return next((float(e.t_s) for e in events if e.event == "load"), 0.0)


_LANE_NAME_CHARS = 24
_LEGEND = (
    ("fault", "fault injected"),
    ("recovery", "recovered / removed"),
    ("check", "check passed"),
    ("check-fail", "check failed"),
    ("run", "load, rollback"),
)
_OFFSET = {"fault": -4, "recovery": 4}  # a recovery and the next injection often share a time


def timeline_chart(events: Sequence[TimelineEntry], duration_s: float | None) -> str:
    """One lane per fault: red bars while it was active, red dots where it was injected,
    green dots where it recovered or was removed; blue dots for the steady-state checks."""
    left, right, top, row = 190, WIDTH - 20, 34, 28
    end = max([float(e.t_s) for e in events] + [duration_s or 0.0, 1.0])
    found = lanes(events)
    axis = top + row * len(found) + 4
    x = Scale(0, end, left, right)
    body: list[str] = []
    cx = float(left)
    for kind, words in _LEGEND:
        body.append(f'<circle cx="{cx + 6:.0f}" cy="12" r="5" class="ev-{kind}"/>')
        body.append(text_at(cx + 16, 16, words, "label"))
        cx += 16 + 8 * len(words) + 24  # 13px text is under 8px a character
    for tick in x.ticks():
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 6}" y2="{axis + 5}" class="grid"/>'
        )
        body.append(text_at(x(tick), axis + 18, f"{tick:g} s", "tick", "middle"))
    body.append(f'<line x1="{left}" x2="{right}" y1="{axis}" y2="{axis}" class="axis"/>')
    for i, lane in enumerate(found):
        mid = top + i * row + row / 2
        name = lane.name if len(lane.name) <= _LANE_NAME_CHARS else lane.name[:23] + "…"
        body.append(
            f"<g><title>{escape(lane.name)}</title>{text_at(left - 10, mid + 4, name, 'label strong', 'end')}</g>"
        )
        for window in lane.windows(end):
            a, b = x(window.start_s), x(window.end_s)
            tip = f"{lane.name}: active {window.start_s:g}s to {window.end_s:g}s"
            body.append(
                f'<rect x="{a:.1f}" y="{mid - 6:.1f}" width="{max(b - a, 2):.1f}" height="12" '
                f'class="fault-bar"><title>{escape(tip)}</title></rect>'
            )
        for entry in lane.entries:
            kind = kind_of(entry)
            tip = f"{entry.t_s}s {entry.event}: {entry.detail}"
            body.append(
                f'<circle cx="{x(float(entry.t_s)):.1f}" cy="{mid + _OFFSET.get(kind, 0):.1f}" '
                f'r="4.5" class="ev-{kind}"><title>{escape(tip)}</title></circle>'
            )
    desc = "; ".join(f"{e.t_s}s {e.event}: {e.detail}" for e in events)
    return chart("Chaos timeline: one lane per fault", desc, axis + 28, body)
