"""The live terminal view: a handler of runner events."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from heisen import events as ev
from heisen._serialised import JsonObject
from heisen._units import format_duration

_MAX_HOTSPOTS = 3
_MAX_PROTECTED = 5

STATUS_STYLE = {
    "passed": "green",
    "failed": "bold red",
    "error": "bold white on red",
    "inconclusive": "bold yellow",
    "skipped": "dim",
    "interrupted": "yellow",
    "pending": "dim",
    "running": "cyan",
}


def styled(status: str) -> str:
    """`status` as rich markup in its colour."""
    return f"[{STATUS_STYLE.get(status, 'default')}]{escape(status)}[/]"


class TerminalView:
    """Prints one line per phase change and a live progress bar for trials."""

    def __init__(self, console: Any, *, live: bool = True) -> None:
        self.console = console
        self.live = live and console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.console.print(
                f"[bold]heisen[/] run [cyan]{event.run_id}[/] seed={event.seed} "
                f"phases: {', '.join(event.phases)}\n  run dir: {event.run_dir}"
            )
        elif isinstance(event, ev.SystemStarting):
            self.console.print(f"  [dim]·[/] {escape(event.what)}")
        elif isinstance(event, ev.PhaseStarted):
            self._close_progress()
            self.console.print(f"[bold]▶ {event.phase}[/]")
            if event.trials and self.live:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                self._progress = Progress(
                    TextColumn("  {task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[detail]}"),
                    TimeElapsedColumn(),
                    console=self.console,
                    transient=True,
                )
                self._progress.start()
                self._task = self._progress.add_task("trials", total=event.trials, detail="")
        elif isinstance(event, ev.TrialFinished):
            detail = f"violations {event.violations_so_far}  {event.rps:,.0f} req/s" + (
                f"  p99 {event.p99_ms:.1f}ms" if event.p99_ms is not None else ""
            )
            if self._progress is not None:
                self._progress.update(
                    self._task, completed=event.trial, total=event.trials, detail=detail
                )
            elif event.trial == event.trials or event.trial % max(1, event.trials // 5) == 0:
                self.console.print(f"  trial {event.trial}/{event.trials}  {detail}")
        elif isinstance(event, ev.Progress):
            if self._progress is not None and event.total:
                self._progress.update(
                    self._task, completed=event.completed, total=event.total, detail=event.message
                )
            else:
                self.console.print(f"  [dim]·[/] {escape(event.message)}")
        elif isinstance(event, ev.Warning | ev.TeardownFailed):
            self._close_progress()
            self.console.print(f"  [yellow]warning:[/] {escape(event.message)}")
        elif isinstance(event, ev.PhaseFinished):
            self._close_progress()
            if event.status == "skipped":
                self.console.print(
                    f"[dim]· {event.phase} skipped: {escape(event.outputs.get('skip_reason', '') or event.summary.removeprefix('skipped: '))}[/]"
                )
            else:
                self.console.print(
                    f"  {styled(event.status)} in {format_duration(event.duration_s)}: {escape(event.summary)}"
                )
                self._print_facts(event)
        elif isinstance(event, ev.RunFinished):
            self._close_progress()

    def _print_facts(self, event: ev.PhaseFinished) -> None:
        """The invariants that could not be evaluated and the bound, as the phase ends; after an
        observing predict, its top hotspots with their evidence and what is protected."""
        from heisen.report._facts import bound_of, trial_errors

        errors = trial_errors(event.phase, event.outputs)
        for error in errors[:3]:
            self.console.print(f"  [red]✗[/] {escape(error.describe())}")
        if len(errors) > 3:
            self.console.print(f"  … and {len(errors) - 3} more")
        bound = bound_of(event.phase, event.outputs, duration_s=event.duration_s)
        if bound is not None:
            self.console.print(f"  bound: {escape(bound.line())}")
        if event.phase == "predict":
            self._print_observed(event.outputs)

    def _print_observed(self, outputs: JsonObject) -> None:
        """Observe mode: the top hotspots with the operations that show them, then what is protected."""
        from heisen.report._hotspots import hotspot_line, observed_outputs, protected_line
        from heisen.report._summary import clean

        observed = observed_outputs(outputs)
        if observed is None:
            return
        for hotspot in observed.hotspots[:_MAX_HOTSPOTS]:
            self.console.print(
                f"  [bold]hotspot:[/] {clean(hotspot_line(hotspot))}", soft_wrap=True
            )
            for line in hotspot.evidence:
                self.console.print(f"      {clean(line)}", soft_wrap=True)
        if len(observed.hotspots) > _MAX_HOTSPOTS:
            self.console.print(
                f"  … and {len(observed.hotspots) - _MAX_HOTSPOTS} more in the report"
            )
        for hotspot in observed.protected[:_MAX_PROTECTED]:
            self.console.print(
                f"  [green]protected:[/] {clean(protected_line(hotspot))}", soft_wrap=True
            )
        if len(observed.protected) > _MAX_PROTECTED:
            self.console.print(
                f"  … and {len(observed.protected) - _MAX_PROTECTED} more protected in the report"
            )

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
