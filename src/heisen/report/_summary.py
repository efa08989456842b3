"""The final terminal summary: phases, the ladder, findings with their replay commands.

It must read at 80 columns with ``NO_COLOR=1`` in a CI log: wrapped lines
keep a hanging indent, and replay commands are printed whole on their own
line (never hard-wrapped, so they copy in one piece).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from heisen.manifest import PhaseRecord, RunManifest
from heisen.report._calibration import calibration
from heisen.report._facts import (
    bounds,
    error_headline,
    evidence_line,
    inconclusive_phases,
    trial_errors,
)
from heisen.report._ladder import (
    calibration_line,
    format_rate,
    headline,
    invariant_lines,
    ladder,
)
from heisen.report._terminal import styled

_MAX_FINDINGS = 20
_MAX_TRIAL_ERRORS = 10
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def clean(value: Any) -> str:
    """``value`` as rich-safe text without terminal control sequences (shown as ``\\xNN``)."""
    from rich.markup import escape

    return escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


def print_summary(
    manifest: RunManifest, run_dir: Path, *, console: Any, reports: list[str]
) -> None:
    from rich.markup import escape

    console.print()
    console.print(_phase_table(manifest))
    console.print()
    console.print(_indented(f"[bold]ladder:[/] {escape(headline(manifest))}", 8))
    for line in invariant_lines(manifest):
        console.print(_indented(f"  {escape(line)}", 10))
    calibrated = calibration(manifest)
    if calibrated is not None:
        console.print(_indented(f"  {escape(calibration_line(calibrated))}", 4))
    _print_bounds(manifest, console)
    for name, reason in inconclusive_phases(manifest):
        console.print(_indented(f"[yellow]inconclusive in {escape(name)}:[/] {clean(reason)}", 2))
    for name, record in manifest.phases.items():
        _print_error(name, record, console)
    _print_findings(manifest, console)
    failures = (
        (manifest.phases["fuzz"].outputs.get("failures") or []) if "fuzz" in manifest.phases else []
    )
    if failures:
        ids = ", ".join(str(f.get("id")) for f in failures[:5]) + (
            " …" if len(failures) > 5 else ""
        )
        console.print()
        console.print(
            _indented(f"[bold]fuzz:[/] {len(failures)} failing case(s): {escape(ids)}", 4, first=2)
        )
    console.print(
        f"\nrun {styled(str(manifest.status))}: {escape(str(run_dir / 'manifest.yaml'))}",
        soft_wrap=True,
    )
    for report in reports:
        console.print(f"  report: {escape(str(run_dir / report))}", soft_wrap=True)


def _print_bounds(manifest: RunManifest, console: Any) -> None:
    from rich.markup import escape

    found = bounds(manifest)
    if not found:
        return
    console.print("[bold]bounds:[/]")
    for bound in found:
        console.print(_indented(f"  {escape(bound.phase)}: {clean(bound.line())}", 4))


def _print_error(name: str, record: PhaseRecord, console: Any) -> None:
    from rich.markup import escape

    errors = trial_errors(name, record.outputs)
    headline = error_headline(name, record)
    if headline is None and not errors:
        return
    head = f"[red]error in {escape(name)}:[/]"
    if headline is not None:
        head += f" {clean(headline)}"
    console.print(_indented(head, 2))
    for error in errors[:_MAX_TRIAL_ERRORS]:
        console.print(_indented(f"  {clean(error.describe())}", 4))
    if len(errors) > _MAX_TRIAL_ERRORS:
        console.print(f"    … and {len(errors) - _MAX_TRIAL_ERRORS} more in the manifest")
    for meaning in dict.fromkeys(error.meaning for error in errors):
        console.print(_indented(f"  → {escape(meaning)}", 4))


def _phase_table(manifest: RunManifest) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    table.add_column("phase", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("rate", justify="right", no_wrap=True)
    table.add_column("95% CI", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("summary", overflow="fold", ratio=1, min_width=20)
    rungs = {rung.phase: rung for rung in ladder(manifest)}
    for name, record in manifest.phases.items():
        rung = rungs.get(name)
        rate = format_rate(rung.rate) if rung and rung.rate is not None else ""
        ci = (
            f"{format_rate(rung.ci95[0])}\N{EN DASH}{format_rate(rung.ci95[1])}"
            if rung and rung.ci95
            else ""
        )
        time = (
            f"{record.duration_s:.1f}s"
            if record.duration_s and str(record.status) != "skipped"
            else ""
        )
        summary = (
            record.skip_reason
            if str(record.status) == "skipped" and record.skip_reason
            else record.summary
        )
        table.add_row(name, styled(str(record.status)), rate, ci, time, clean(summary or ""))
    return table


def _print_findings(manifest: RunManifest, console: Any) -> None:
    from rich.markup import escape

    findings = [
        f for record in manifest.phases.values() for f in record.outputs.get("findings") or []
    ]
    if not findings:
        return
    console.print(f"\n[bold]findings[/] ({len(findings)})")
    timeline_shown = False
    for finding in findings[:_MAX_FINDINGS]:
        head = f"[red]✗[/] {escape(str(finding.get('phase')))}: [bold]{escape(str(finding.get('name')))}[/]"
        console.print(_indented(f"{head}: {clean(finding.get('message', ''))}", 4, first=2))
        evidence = evidence_line(finding.get("evidence"))
        if evidence:
            console.print(_indented(f"    evidence: {clean(evidence)}", 6))
        if finding.get("replay"):
            console.print(f"    replay: {clean(finding['replay'])}", soft_wrap=True)
        timeline = (finding.get("evidence") or {}).get("timeline")
        if timeline and not timeline_shown:
            timeline_shown = True
            console.print("    minimal violating history:")
            console.print(escape(str(timeline)), soft_wrap=True, highlight=False)
    if len(findings) > _MAX_FINDINGS:
        console.print(f"  … and {len(findings) - _MAX_FINDINGS} more in the manifest")


def _indented(markup: str, indent: int, first: int = 0) -> Any:
    """``markup`` wrapped with a hanging indent: the first line at ``first``, the rest at ``indent``."""
    from rich.padding import Padding
    from rich.text import Text

    text = Text.from_markup(markup)
    if first >= indent:
        return Padding(text, (0, 0, 0, indent))
    return _Hanging(text, indent, first)


class _Hanging:
    """A renderable: text whose continuation lines are indented further than its first line."""

    def __init__(self, text: Any, indent: int, first: int) -> None:
        self.text, self.indent, self.first = text, indent, first

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        width = max(10, options.max_width - self.indent)
        lines = self.text.wrap(console, width)
        for number, line in enumerate(lines):
            yield Segment(" " * (self.first if number == 0 else self.indent))
            yield from line.render(console)
            yield Segment.line()
