"""The final terminal summary: phases, the ladder, findings with their replay commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heisen.manifest import RunManifest
from heisen.report._ladder import format_rate, ladder, ladder_line
from heisen.report._terminal import styled


def print_summary(manifest: RunManifest, run_dir: Path, *, console: Any, reports: list[str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False, expand=False)
    table.add_column("phase")
    table.add_column("status")
    table.add_column("violation rate", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("summary", overflow="fold")
    rungs = {rung.phase: rung for rung in ladder(manifest)}
    for name, record in manifest.phases.items():
        rung = rungs.get(name)
        rate = format_rate(rung.rate) if rung and rung.rate is not None else ""
        ci = f"{format_rate(rung.ci95[0])}–{format_rate(rung.ci95[1])}" if rung and rung.ci95 else ""
        table.add_row(name, styled(str(record.status)), rate, ci, escape(record.summary or record.skip_reason or ""))
    console.print()
    console.print(table)
    console.print(f"\n[bold]ladder:[/] {escape(ladder_line(list(rungs.values())))}")
    findings = [f for record in manifest.phases.values() for f in record.outputs.get("findings", [])]
    if findings:
        console.print("\n[bold]findings[/]")
        for finding in findings[:20]:
            console.print(f"  [red]✗[/] {escape('[' + finding['phase'] + ']')} {escape(finding['name'])}: {escape(finding['message'])}")
            if finding.get("replay"):
                console.print(f"    replay: {escape(finding['replay'])}")
        if len(findings) > 20:
            console.print(f"  … and {len(findings) - 20} more in the manifest")
    console.print(f"\nrun {styled(str(manifest.status))}: {run_dir / 'manifest.yaml'}")
    for report in reports:
        console.print(f"  report: {run_dir / report}")
