"""How the ad hoc modes' results are shown: a table on stdout for people, or only JSON there.

`heisen stress --url ...` (`heisen.stress.adhoc.AdHocResult`) and `heisen fuzz
--openapi ... --url ...` (`heisen.fuzz.adhoc.AdHocFuzzResult`) return what they
did; this module shows it and says which exit code it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from heisen import events
from heisen.errors import EXIT_OK, EXIT_VIOLATION

if TYPE_CHECKING:
    from heisen.fuzz.adhoc import AdHocFuzzResult
    from heisen.stress.adhoc import AdHocResult


def show_load(result: AdHocResult, *, as_json: bool) -> int:
    """Show an ad hoc load; it ran, so 0 whatever its status codes."""
    from heisen.console import make_console, write_json

    if as_json:
        write_json(result.to_dict())
        return EXIT_OK
    console = make_console(stderr=False)
    for renderable in load_renderables(result):
        if isinstance(renderable, str):
            console.print(renderable, markup=False)
        else:
            console.print(renderable)
    return EXIT_OK


def load_renderables(result: AdHocResult) -> list[Any]:
    from rich.table import Table

    shown = result.to_dict()  # the figures as --json shows them, rounded alike
    head = f"{result.method} {result.url}  ·  {_describe(shown['model'])}"
    if result.plan.repeat > 1:
        head += f"  ·  x{result.plan.repeat}"
    overview = Table(show_header=False, box=None)
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    overview.add_row("requests", str(shown["requests"]))
    overview.add_row("rps", f"{shown['rps']:.1f}")
    overview.add_row("duration", f"{shown['duration_s']:.3f} s")
    if "protocol" in shown:
        chosen = shown["protocol"]
        overview.add_row("protocol", f"{chosen['used']} ({chosen['reason']})")
    if "release_spread_ms" in shown:
        spread = shown["release_spread_ms"]
        overview.add_row(
            "burst release spread", f"{spread['median']:.3f} ms (max {spread['max']:.3f} ms)"
        )
    codes = shown["status_codes"]
    overview.add_row(
        "status codes", ", ".join(f"{code}: {n}" for code, n in codes.items()) or "none"
    )
    errors = shown["errors"]
    overview.add_row("errors", ", ".join(f"{kind}: {n}" for kind, n in errors.items()) or "none")

    latency = Table(title="latency (ms)", title_justify="left")
    latency.add_column("")
    keys = list(shown["latency_ms"])  # p50 … p99.9, then max
    for name in keys:
        latency.add_column(name, justify="right")
    latency.add_row("corrected", *(f"{shown['latency_ms'][k]:.2f}" for k in keys))
    latency.add_row("uncorrected", *(f"{shown['latency_uncorrected_ms'][k]:.2f}" for k in keys))
    notes = (
        [
            "corrected: from each request's intended send time (open model, coordinated omission); "
            "uncorrected: from its write."
        ]
        if result.plan.model == "rate"
        else []
    )
    return [head, overview, "", latency, *notes]


def _describe(model: Mapping[str, Any]) -> str:
    if model["kind"] == "burst":
        asked = model.get("protocol", "h2" if model.get("http2") else "http/1.1")
        return f"burst of {model['requests']}" + ("" if asked == "http/1.1" else f" ({asked})")
    if model["kind"] == "rate":
        return f"{model['rate_per_s']:g}/s for {model['duration_s']:g} s"
    return f"{model['copies']} users for {model['duration_s']:g} s"


class FuzzProgress:
    """The ad hoc fuzzer's events on stderr: a spinner per operation, warnings as they come."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._status: Any = None

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.Warning):
            self.console.print(f"[yellow]warning:[/] {event.message}", markup=True)
        elif isinstance(event, events.Progress):
            self.close()
            if event.completed is None:
                self._status = self.console.status(event.message)
                self._status.start()

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def show_fuzz(result: AdHocFuzzResult, *, as_json: bool, console: Any = None) -> int:
    """Show an ad hoc fuzz run (on stdout unless given a console); 1 when a case failed, else 0."""
    from heisen.console import make_console, write_json

    if as_json:
        write_json(result.to_dict())
    else:
        _fuzz_table(console or make_console(stderr=False), result)
    return EXIT_VIOLATION if result.failures else EXIT_OK


def _fuzz_table(console: Any, result: AdHocFuzzResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from heisen.fuzz.adhoc import RESULT_NAME

    table = Table(title=f"heisen fuzz {result.url} (seed {result.seed})", show_lines=True)
    for column in ("operation", "cases", "outcome", "case", "shrunk to", "replay"):
        table.add_column(column, overflow="fold")
    for report in result.operations:
        unique = report.unique_failures
        if not unique:
            table.add_row(escape(report.operation), str(report.cases), "passed", "", "", "")
        for failure in unique:
            same = report.alike(failure)
            outcome = failure.outcome + (f" (+{same} alike)" if same else "")
            table.add_row(
                escape(report.operation),
                str(report.cases),
                outcome,
                escape(failure.label),
                escape(failure.shrunk),
                escape(failure.replay),
            )
    console.print(table)
    verdict = "[bold red]failed[/]" if result.failures else "[bold green]passed[/]"
    console.print(
        f"{verdict}: {result.failures} distinct failure(s); corpus and {RESULT_NAME} in "
        f"{escape(str(result.run_dir))}"
    )
