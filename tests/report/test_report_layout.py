"""The HTML report laid out by a real headless Chromium: no two text labels of a chart overlap.

Chromium lays the page out; a script added to a copy of the page (the report's own
Content-Security-Policy would refuse it) measures every SVG ``<text>`` with
``getBoundingClientRect`` and writes the overlapping pairs into the DOM, which
``--dump-dom`` returns. A screenshot of the same page is kept beside it.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from history_files import write_history
from test_report_browser import CONSOLE_ERRORS, _chromium

from heisen.manifest import RunManifest
from heisen.report import html

pytestmark = pytest.mark.slow

_MEASURE = """
<script>
(function () {
  var out = [];
  document.querySelectorAll('svg').forEach(function (svg, chart) {
    var boxes = [];
    svg.querySelectorAll('text').forEach(function (t) {
      var r = t.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) { boxes.push({text: t.textContent, r: r}); }
    });
    var title = svg.querySelector('title');
    for (var i = 0; i < boxes.length; i++) {
      for (var j = i + 1; j < boxes.length; j++) {
        var a = boxes[i].r, b = boxes[j].r;
        var w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        var h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) {
          out.push({chart: title ? title.textContent : String(chart),
                    a: boxes[i].text, b: boxes[j].text, overlap: [w, h]});
        }
      }
    }
  });
  var labels = document.querySelectorAll('svg text').length;
  var pre = document.createElement('pre');
  pre.id = 'layout-check';
  pre.textContent = JSON.stringify({labels: labels, overlaps: out});
  document.body.appendChild(pre);
})();
</script>
"""


def _measured(page: Path) -> Path:
    """A copy of the page with no CSP and the measuring script at the end of its body."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text("utf-8"))
    copy = page.with_name("measured.html")
    text = text.replace("</body>", _MEASURE + "</body>") if "</body>" in text else text + _MEASURE
    copy.write_text(text, encoding="utf-8")
    return copy


def _layout(chromium: Path, tmp_path: Path, page: Path) -> dict[str, Any]:
    result = _chromium(
        chromium, tmp_path, "--window-size=1280,2000", "--dump-dom", _measured(page).as_uri()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for marker in CONSOLE_ERRORS:
        assert marker not in result.stderr, result.stderr[-2000:]
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', result.stdout, re.S)
    assert found is not None, result.stdout[-2000:]
    data: dict[str, Any] = json.loads(unescape(found.group(1)))
    return data


def test_the_overlap_check_sees_overlapping_labels(chromium: Path, tmp_path: Path) -> None:
    page = tmp_path / "overlap.html"
    page.write_text(
        '<!DOCTYPE html><svg width="300" height="60"><title>t</title>'
        '<text x="10" y="30">first label</text><text x="40" y="34">second label</text></svg>',
        encoding="utf-8",
    )
    layout = _layout(chromium, tmp_path, page)
    assert [(o["a"], o["b"]) for o in layout["overlaps"]] == [("first label", "second label")]


@pytest.mark.parametrize("fixture", ["chaos_fuzz_run", "failed_run", "target_run"])
def test_no_two_chart_labels_overlap(
    chromium: Path, tmp_path: Path, fixture: str, request: pytest.FixtureRequest
) -> None:
    manifest: RunManifest = request.getfixturevalue(fixture)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    bursts = [[(t + 0.1 * k, 5.0 + 40 * (t % 3 == 0), "ok") for k in range(8)] for t in range(20)]
    write_history(run_dir / "chaos-history.jsonl", bursts)
    write_history(run_dir / "stress-history.jsonl", [*bursts[:8], [(8.5, 12.0, "fail")]])
    page = run_dir / html.write(manifest, run_dir)
    layout = _layout(chromium, tmp_path, page)
    assert int(layout["labels"]) > 20
    assert layout["overlaps"] == [], json.dumps(layout["overlaps"], indent=1)[:3000]
    screenshot = tmp_path / "report.png"
    shot = _chromium(
        chromium, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,6000", page.as_uri()
    )
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-2000:]
    print(f"screenshot: {screenshot}")
