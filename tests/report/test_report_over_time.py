"""The chaos section (steady state, timeline lanes) and each load phase over time, from the
history files a run leaves in its run dir."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from history_files import write_history as _history

from conftest import load
from heisen.manifest import RunManifest
from heisen.outputs import TimelineEntry
from heisen.report import html
from heisen.report._chaos_timeline import fault_windows, lanes, timeline_chart
from heisen.report._svg import Scale, nice_step
from heisen.report._timeseries import load_file, per_second, read_series


def test_per_second_counts_latency_percentiles_and_outcomes(tmp_path: Path) -> None:
    path = _history(
        tmp_path / "stress-history.jsonl",
        [
            [(0.0, 10.0, "ok"), (0.1, 20.0, "ok"), (0.2, 30.0, "fail")],
            [],
            [(2.1, 5.0, "info"), (2.2, 7.0, "ok")],
        ],
    )
    series = read_series(path)
    assert [s.requests for s in series] == [3, 0, 2]
    assert (series[0].p50_ms, series[0].p99_ms) == (20.0, 30.0)
    assert (series[0].failed, series[0].unknown) == (1, 0)
    assert series[1].p50_ms is None  # a second with no request has no latency, not 0
    assert (series[2].failed, series[2].unknown) == (0, 1)


def test_a_line_cut_short_and_unpaired_invokes_are_left_out(tmp_path: Path) -> None:
    path = _history(tmp_path / "h.jsonl", [[(0.0, 1.0, "ok")]])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"process": 9, "type": "invoke", "time": 1}\n{"process": 9, "ty')
    assert [s.requests for s in read_series(path)] == [1]
    assert per_second([]) == []


def test_ticks_are_round_numbers() -> None:
    assert [nice_step(v) for v in (0.23, 2.1, 2.5, 4.0, 7.0, 30.0)] == [0.5, 5, 5, 5, 10, 50]
    assert Scale(0, 10, 0, 100).ticks() == [0, 2, 4, 6, 8, 10]
    assert Scale(0, 3, 0, 100).ticks(integer=True) == [0, 1, 2, 3]  # counts: never 0.5
    for hi in (0.9, 7.3, 9.99, 12, 137, 4200):
        ticks = Scale(0, hi, 0, 100).ticks()
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 9) in (1, 2, 5), (hi, ticks)
        assert all(abs(t / step - round(t / step)) < 1e-9 for t in ticks), (hi, ticks)


def test_the_p99_axis_has_no_quarter_ticks(failed_run: RunManifest) -> None:
    for record in failed_run.phases.values():  # p99 up to 9 ms: a 2.5 ms step once
        for i, line in enumerate(record.outputs.get("per_trial") or []):
            line["p99_ms"] = (3.0, 9.0, 6.0)[i % 3]
    chart = html.render(failed_run).split("<title>p99 latency per trial")[1].split("</svg>")[0]
    labels = re.findall(r'class="tick" text-anchor="end">([^<]+) ms<', chart)
    assert labels == ["0", "2", "4", "6", "8", "10"]


def test_steady_state_is_a_table_of_probes() -> None:
    page = html.render(load("chaos-fuzz"))
    chaos = page.split('id="chaos"')[1]
    assert "{'" not in chaos and "&#x27;verdict" not in chaos  # no Python dict printed
    table = chaos.split('<table class="steady-state">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert len(rows) == 4  # header, before (no probe), during (available), after (no-oversell)
    assert "<code>available</code>" in rows[2] and ">19<" in rows[2] and "PASS" in rows[2].upper()
    assert "<code>no-oversell</code>" in rows[3] and "sold &lt;= capacity" in rows[3]


def test_steady_state_written_as_verdicts_only_still_reads(failed_run: RunManifest) -> None:
    chaos = html.render(failed_run).split('id="chaos"')[1]
    assert chaos.count("st-held") >= 3 and "{'" not in chaos


def _timeline(name: str) -> list[TimelineEntry]:
    outputs = load(name).phases["chaos"].outputs
    return [TimelineEntry.from_manifest(e) for e in outputs["timeline"]]


def test_one_lane_per_fault_and_recoveries_join_their_fault() -> None:
    found = lanes(_timeline("chaos-fuzz"))
    assert [lane.name for lane in found] == ["steady state, load", "slow-redis", "kill-inventory"]
    kill = found[2]
    assert sum(e.event == "recovered" for e in kill.entries) == 6  # they name no experiment
    windows = kill.windows(20.0)
    assert len(windows) == 6 and all(w.end_s > w.start_s for w in windows)
    assert [(w.start_s, w.end_s) for w in found[1].windows(20.0)] == [(0.035, 15.038)]


def test_recovery_marks_are_green_as_the_legend_says() -> None:
    for name in ("chaos-fuzz", "failed"):
        svg = timeline_chart(_timeline(name), 20.0)
        marks = re.findall(r'<circle cx="[\d.]+" cy="[\d.]+" r="4.5" class="(ev-[\w-]+)"', svg)
        assert "ev-recovery" in marks and "ev-fault" in marks, name
        legend = set(re.findall(r'r="5" class="(ev-[\w-]+)"', svg))
        assert set(marks) <= legend, (name, set(marks) - legend)
    old = lanes(_timeline("failed"))  # restart and heal, before experiments were named
    assert [[e.event for e in lane.entries] for lane in old[1:]] == [
        ["kill", "restart"],
        ["latency", "heal"],
    ]


def test_chaos_load_over_time_shades_its_fault_windows(tmp_path: Path) -> None:
    manifest = load("chaos-fuzz")
    _history(tmp_path / "chaos-history.jsonl", [[(t + 0.5, 10.0, "ok")] for t in range(20)])
    _history(tmp_path / "stress-history.jsonl", [[(0.2, 3.0, "ok")], [(1.2, 4.0, "fail")]])
    page = html.render(manifest, tmp_path)
    section = page.split('id="over-time"')[1].split("</section>")[0]
    stress, chaos = section.split("<h3>chaos</h3>")
    assert "<h3>stress</h3>" in stress and 'class="fault-band"><title>' not in stress
    windows = fault_windows(_timeline("chaos-fuzz"), 20.086)
    bands = re.findall(r'class="fault-band"><title>([^<]+)</title>', chaos)
    assert len(bands) == 3 * len(windows)  # one per fault window in each of the three panels
    assert "slow-redis: 0.019s to 15.022s" in bands  # moved to the load's clock (load at 0.016s)
    assert html.render(manifest).count('id="over-time"') == 0  # no run dir: no section


def test_a_request_log_gives_every_request_its_second(tmp_path: Path) -> None:
    s = 1_000_000_000
    path = tmp_path / "chaos-load.jsonl"
    lines = [
        {"start": 5 * s, "end": 5 * s + 2_000_000, "outcome": "ok"},
        {"start": 5 * s, "end": 5 * s + 4_000_000, "outcome": "failed"},
        {"start": 6 * s, "end": 7 * s + 1, "outcome": "info"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    series = read_series(path)
    assert [s.requests for s in series] == [2, 0, 1]
    assert (series[0].p50_ms, series[0].failed, series[2].unknown) == (2.0, 1, 1)
    assert load_file(tmp_path, "chaos", []) == path
