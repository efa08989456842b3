"""How an ad hoc result is shown: a table on stderr for people, or only JSON on stdout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heisen.stress._latency import PERCENTILES


def show(result: Mapping[str, Any], *, as_json: bool) -> None:
    from heisen.console import make_console, write_json

    if as_json:
        write_json(dict(result))
        return
    console = make_console(stderr=True)
    for renderable in renderables(result):
        if isinstance(renderable, str):
            console.print(renderable, markup=False)
        else:
            console.print(renderable)


def renderables(result: Mapping[str, Any]) -> list[Any]:
    from rich.table import Table

    model = result["model"]
    head = f"{result['method']} {result['url']}  ·  {_describe(model)}"
    if result["repeat"] > 1:
        head += f"  ·  x{result['repeat']}"
    overview = Table(show_header=False, box=None)
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    overview.add_row("requests", str(result["requests"]))
    overview.add_row("rps", f"{result['rps']:.1f}")
    overview.add_row("duration", f"{result['duration_s']:.3f} s")
    if "release_spread_ms" in result:
        spread = result["release_spread_ms"]
        overview.add_row(
            "burst release spread", f"{spread['median']:.3f} ms (max {spread['max']:.3f} ms)"
        )
    codes = result["status_codes"]
    overview.add_row(
        "status codes", ", ".join(f"{code}: {n}" for code, n in codes.items()) or "none"
    )
    errors = result["errors"]
    overview.add_row("errors", ", ".join(f"{kind}: {n}" for kind, n in errors.items()) or "none")

    latency = Table(title="latency (ms)", title_justify="left")
    latency.add_column("")
    for name, _ in PERCENTILES:
        latency.add_column(name, justify="right")
    latency.add_column("max", justify="right")
    keys = [name for name, _ in PERCENTILES] + ["max"]
    latency.add_row("corrected", *(f"{result['latency_ms'][k]:.2f}" for k in keys))
    latency.add_row("uncorrected", *(f"{result['latency_uncorrected_ms'][k]:.2f}" for k in keys))
    notes = (
        [
            "corrected: from each request's intended send time (open model, coordinated omission); "
            "uncorrected: from its write."
        ]
        if model["kind"] == "rate"
        else []
    )
    return [head, overview, "", latency, *notes]


def _describe(model: Mapping[str, Any]) -> str:
    if model["kind"] == "burst":
        return f"burst of {model['requests']}" + (" (HTTP/2)" if model.get("http2") else "")
    if model["kind"] == "rate":
        return f"{model['rate_per_s']:g}/s for {model['duration_s']:g} s"
    return f"{model['copies']} users for {model['duration_s']:g} s"
