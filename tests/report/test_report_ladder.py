"""The target's ladder with both measures: rate and per-operation rate with their intervals,
the smallest reproducing burst, and predict's calibrated points beside the observed rates.

The charts are parsed as XML and read by their <title>s and labels, so a test checks the
numbers drawn, not the markup around them; a figure nothing measured reads "not measured".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from heisen.console import make_console
from heisen.manifest import RunManifest
from heisen.report import html, markdown, print_summary
from heisen.report._ladder import headline

SVG = "{http://www.w3.org/2000/svg}"


def _charts(page: str) -> dict[str, ET.Element]:
    """Every chart of the page by its <title>."""
    charts = {}
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        root = ET.fromstring(svg)
        title = root.find(f"{SVG}title")
        assert title is not None and title.text and root.find(f"{SVG}desc") is not None
        charts[title.text] = root
    return charts


def _chart(page: str, starts: str) -> ET.Element:
    [chart] = [root for title, root in _charts(page).items() if title.startswith(starts)]
    return chart


def _texts(chart: ET.Element) -> list[str]:
    return [t.text or "" for t in chart.iter(f"{SVG}text")]


def _tips(chart: ET.Element, tag: str, cls: str) -> list[str]:
    """The tooltips of the `tag` elements whose class is `cls`."""
    return [
        (element.findtext(f"{SVG}title") or "")
        for element in chart.iter(f"{SVG}{tag}")
        if element.get("class") == cls
    ]


def _with(manifest: RunManifest, **outputs: Any) -> RunManifest:
    """A copy with some phases' outputs replaced (`predict={...}`), the rest as they were."""
    data = manifest.model_dump(mode="json")
    for phase, values in outputs.items():
        data["phases"][phase]["outputs"] = values
    return RunManifest.model_validate(data)


def test_the_ladder_chart_draws_each_measured_rate_with_its_whiskers(
    target_run: RunManifest,
) -> None:
    chart = _chart(html.render(target_run), "Reproduction ladder")
    whiskers = [p for p in chart.iter(f"{SVG}path") if p.get("class") == "whisker"]
    assert len(whiskers) == 3  # stress, isolate, chaos; predict's calibrated rate has none
    texts = _texts(chart)
    assert "25%  [8.9%, 53%]" in texts and "0%  [0%, 24%]" in texts
    assert "inconclusive: 0 throttled periods in 6 trials" in texts
    assert _tips(chart, "rect", "bar predicted") == ["predict 10%"]


def test_the_per_operation_rate_is_a_dot_with_its_interval_and_not_measured_elsewhere(
    target_run: RunManifest,
) -> None:
    chart = _chart(html.render(target_run), "Per-operation rate")
    assert _tips(chart, "circle", "dot perop") == [
        "stress: 0 per op  [0\N{EN DASH}0]",
        "isolate: 0.0125 per op  [0.004\N{EN DASH}0.021]",
    ]
    whiskers = [p for p in chart.iter(f"{SVG}path") if p.get("class") == "whisker"]
    assert len(whiskers) == 2
    texts = _texts(chart)
    assert "per-operation rate not measured (failed)" in texts  # chaos evaluates no severity:
    assert "per-operation rate not measured (passed)" in texts  # predict has none
    desc = chart.findtext(f"{SVG}desc") or ""
    assert "isolate: 0.0125 per operation (95% CI 0.004 to 0.021)" in desc
    assert "chaos: not measured" in desc


def test_the_burst_chart_shows_the_smallest_burst_each_try_and_none_up_to_the_max(
    target_run: RunManifest,
) -> None:
    chart = _chart(html.render(target_run), "Smallest reproducing burst")
    texts = _texts(chart)
    assert "smallest burst 8" in texts  # isolate's sweep
    assert "none up to 64" in texts  # stress's sweep found none
    assert "smallest burst 32" in texts  # predict's calibrated forecast, not its first 16
    assert "smallest burst not measured (failed)" in texts  # chaos ran no sweep
    assert "inconclusive: 0 throttled periods in 6 trials" in texts
    assert _tips(chart, "circle", "try hit") == ["isolate: burst 8, 3 of 5 trials violated"]
    misses = _tips(chart, "circle", "try miss")
    assert len(misses) == 8 and "stress: burst 64, 2 of 5 trials violated" in misses
    assert _tips(chart, "rect", "bar none") == ["stress: none up to 64"]
    desc = chart.findtext(f"{SVG}desc") or ""
    assert "isolate: 8 (tried 2: 0/5, 4: 2/5, 8: 3/5)" in desc and "chaos: not measured" in desc


def test_predicted_and_observed_rates_are_two_marker_series_per_load(
    target_run: RunManifest,
) -> None:
    chart = _chart(html.render(target_run), "predict calibrated on no-oversell")
    predicted = _tips(chart, "circle", "pt predicted")
    observed = _tips(chart, "circle", "pt observed")
    assert predicted[1:] == ["load 16: predicted 2.0%", "load 64: predicted 10%"]  # [0]: legend
    assert observed[1:] == [
        "load 16: observed 0%",
        "load 64: observed 5.0% (predicted/observed 2)",
    ]
    assert "within 2x at every load: no" in (chart.findtext(f"{SVG}desc") or "")


def test_the_older_calibration_shape_is_drawn_too(target_run: RunManifest) -> None:
    predict = dict(target_run.phases["predict"].outputs)
    predict["calibration"] = {
        "run": ".heisen/runs/earlier",
        "latency_scale": 1.4,
        "compared": [
            {"phase": "stress", "load": 200, "predicted": 0.3, "observed": 0.1, "ratio": 3.0},
            {"phase": "isolate", "load": 200, "predicted": 0.3, "observed": 0.3, "ratio": 1.0},
        ],
    }
    manifest = _with(target_run, predict=predict)
    chart = _chart(html.render(manifest), "predict calibrated:")
    assert _tips(chart, "circle", "pt observed")[1:] == [
        "load 200: observed 10% (predicted/observed 3)",
        "load 200: observed 30% (predicted/observed 1)",
    ]
    assert "within 2x" not in (chart.findtext(f"{SVG}desc") or "")  # that shape says nothing
    assert {"200 requests (stress)", "200 requests (isolate)"} <= set(_texts(chart))
    assert "predict calibrated: 200 requests 30% predicted vs 10% observed" in markdown.render(
        manifest
    )


def test_without_calibration_predict_is_the_top_hotspots_rate(target_run: RunManifest) -> None:
    predict = dict(target_run.phases["predict"].outputs)
    del predict["calibration"]
    manifest = _with(target_run, predict=predict)
    page = html.render(manifest)
    assert not any(title.startswith("predict calibrated") for title in _charts(page))
    chart = _chart(page, "Reproduction ladder")
    assert "0.40%  [0.10%, 1.0%]" in _texts(chart)
    assert headline(manifest).startswith(
        "no-oversell: predict 0.40% [0.10\N{EN DASH}1.0%] · burst 16 → "
    )
    assert "smallest burst 16" in _texts(_chart(page, "Smallest reproducing burst"))


def test_a_sweep_of_another_invariant_is_not_the_targets_burst(target_run: RunManifest) -> None:
    stress = dict(target_run.phases["stress"].outputs)
    stress["sweep"] = {**stress["sweep"], "target": "no-stale-read"}  # type: ignore[dict-item]
    manifest = _with(target_run, stress=stress)
    chart = _chart(html.render(manifest), "Smallest reproducing burst")
    assert "smallest burst not measured (passed)" in _texts(chart)
    assert "stress 0% [0\N{EN DASH}24%] · 0 per op [0\N{EN DASH}0] · burst not measured" in (
        headline(manifest)
    )


def _nulls() -> RunManifest:
    """A ladder where nothing was measured: a stress that did not check the target, an
    errored isolate, no predict, no sweep, no severity:."""
    return RunManifest.model_validate(
        {
            "run": {
                "id": "nulls",
                "pipeline": "p.yaml",
                "pipeline_sha256": "0" * 64,
                "seed": 1,
                "started_at": "2026-12-01T00:00:00.000Z",
                "heisen_version": "0.1.0",
            },
            "status": "error",
            "phases": {
                "stress": {
                    "status": "passed",
                    "summary": "checked other invariants",
                    "outputs": {},
                },
                "isolate": {
                    "status": "error",
                    "error": {"type": "SystemUnavailable", "message": "redis did not start"},
                },
            },
            "ladder": {
                "target": "no-oversell",
                "steps": [
                    {"phase": "stress", "violation_rate": None, "ci95": None},
                    {"phase": "isolate", "violation_rate": None, "ci95": None},
                ],
            },
        }
    )


def test_nothing_measured_reads_not_measured_never_zero() -> None:
    manifest = _nulls()
    assert headline(manifest) == "no-oversell: stress not measured → isolate error"
    page = html.render(manifest)
    charts = _charts(page)
    assert not any(title.startswith("predict calibrated") for title in charts)
    assert not any(title.startswith("Per-operation rate") for title in charts)
    assert "Per-operation rate: not measured" in page
    burst = _chart(page, "Smallest reproducing burst")
    texts = _texts(burst)
    assert "smallest burst not measured (passed)" in texts
    assert "error: SystemUnavailable: redis did not start" in texts
    assert not [t for t in texts if t.startswith(("smallest burst 0", "none up to"))]
    assert (burst.findtext(f"{SVG}desc") or "") == "stress: not measured; isolate: not measured"
    ladder = _chart(page, "Reproduction ladder")
    assert "not measured (passed)" in _texts(ladder)
    assert not [p for p in ladder.iter(f"{SVG}path") if p.get("class") == "whisker"]
    text = markdown.render(manifest)
    assert (
        "| stress | passed | not measured |  | not measured | not measured |  | "
        "checked other invariants |"
    ) in text


def test_an_empty_ladder_says_so() -> None:
    data = _nulls().model_dump(mode="json")
    data["ladder"]["steps"] = []
    manifest = RunManifest.model_validate(data)
    assert headline(manifest) == "no-oversell: no phase measured a violation rate"
    html.render(manifest)  # draws without a rung


def test_markdown_shows_the_target_line_first_with_both_measures(
    target_run: RunManifest,
) -> None:
    text = markdown.render(target_run)
    line = (
        "**Reproduction ladder:** no-oversell: predict 10% · burst 32 → "
        "stress 0% \\[0\N{EN DASH}24%\\] · 0 per op \\[0\N{EN DASH}0\\] · burst none up to 64 → "
        "isolate 25% \\[8.9\N{EN DASH}53%\\] · 0.0125 per op \\[0.004\N{EN DASH}0.021\\] · burst 8 · "
        "payments link +100 ms → contain inconclusive → chaos 100% \\[21\N{EN DASH}100%\\] (4x) · "
        "burst not measured"
    )
    assert line in text
    assert text.index(line) < text.index("- no-stale-read: stress 75% → isolate 0%")
    assert (
        "predict calibrated on no-oversell: 16 requests 2.0% predicted vs 0% observed · "
        "64 requests 10% predicted vs 5.0% observed (within 2x: no); "
        "smallest burst 32 predicted vs none observed (not within one sweep step)"
    ) in text
    assert (
        "| isolate | failed | 25% | 8.9% \N{EN DASH} 53% | 0.0125 \\[0.004 \N{EN DASH} 0.021\\] | 8 | 12 | "
        "payments link +100 ms · 3/12 trials violated no-oversell |"
    ) in text
    assert "| contain | inconclusive | not measured |  | not measured | not measured |" in text
    assert (
        "| stress | passed | 0% | 0% \N{EN DASH} 24% | 0 \\[0 \N{EN DASH} 0\\] | none up to 64 | 12 |"
        in text
    )


def test_the_terminal_summary_shows_the_target_line_first(
    target_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    print_summary(target_run, Path("/runs/r1"), console=make_console(), reports=[])
    out = capsys.readouterr().err
    flat = " ".join(out.split())
    first = f"ladder: {headline(target_run)}"
    assert first in flat
    assert flat.index(first) < flat.index("no-stale-read: stress 75% → isolate 0%")
    assert "predict calibrated on no-oversell: 16 requests 2.0% predicted vs 0% observed" in flat
    assert (
        "isolate 25% [8.9\N{EN DASH}53%] · 0.0125 per op [0.004\N{EN DASH}0.021] · burst 8" in flat
    )


def _tick_x(chart: ET.Element, label: str) -> float:
    [x] = [
        float(t.get("x") or 0)
        for t in chart.iter(f"{SVG}text")
        if t.get("class") == "tick" and t.text == label
    ]
    return x


def test_whiskers_and_markers_sit_at_their_values_on_the_axes(target_run: RunManifest) -> None:
    page = html.render(target_run)
    ladder = _chart(page, "Reproduction ladder")
    zero, full = _tick_x(ladder, "0%"), _tick_x(ladder, "100%")
    whiskers = [p.get("d") or "" for p in ladder.iter(f"{SVG}path") if p.get("class") == "whisker"]
    start, end = (float(v) for v in re.findall(r"M([\d.]+),[\d.]+H([\d.]+)", whiskers[1])[0])
    assert start == pytest.approx(zero + 0.0893 * (full - zero), abs=0.1)  # isolate's 95% CI
    assert end == pytest.approx(zero + 0.5323 * (full - zero), abs=0.1)

    burst = _chart(page, "Smallest reproducing burst")
    [hit] = [c for c in burst.iter(f"{SVG}circle") if c.get("class") == "try hit"]
    assert float(hit.get("cx") or 0) == pytest.approx(_tick_x(burst, "8"), abs=0.1)

    calibrated = _chart(page, "predict calibrated")
    ys = {
        t.text: float(t.get("y") or 0) - 4
        for t in calibrated.iter(f"{SVG}text")
        if t.get("class") == "tick"
    }
    markers = {
        (c.findtext(f"{SVG}title") or ""): float(c.get("cy") or 0)
        for c in calibrated.iter(f"{SVG}circle")
    }
    assert markers["load 64: predicted 10%"] == pytest.approx(ys["10%"], abs=0.1)
    assert markers["load 64: observed 5.0% (predicted/observed 2)"] == pytest.approx(
        ys["5.0%"], abs=0.1
    )
    assert markers["load 16: observed 0%"] == pytest.approx(ys["0%"], abs=0.1)
