from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from heisen.manifest import RunManifest
from heisen.report import html, write_reports


class _Collector(HTMLParser):
    """Every start tag and the text of every <script>, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _parse(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    return collector


def test_hostile_payloads_stay_text(failed_run: RunManifest) -> None:
    page = html.render(failed_run)
    parsed = _parse(page)
    tags = [tag for tag, _ in parsed.tags]
    assert tags.count("script") == 1 and "img" not in tags
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    assert "pwned" not in "".join(parsed.scripts)
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_self_contained_and_offline(failed_run: RunManifest) -> None:
    page = html.render(failed_run)
    parsed = _parse(page)
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"^(https?:)?//", value), (tag, name, value)
    assert not any(tag in ("link", "iframe", "object", "embed") for tag, _ in parsed.tags)
    csp = [
        a
        for t, a in parsed.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")


def test_every_section_of_a_full_run_is_there(failed_run: RunManifest) -> None:
    page = html.render(failed_run)
    ids = {attrs.get("id") for _, attrs in _parse(page).tags}
    assert {
        "ladder",
        "phases",
        "findings",
        "latency",
        "trials",
        "fuzz",
        "contain",
        "chaos",
        "hotspots",
    } <= ids
    assert "predict 0.30% → stress 0.30% → isolate 1.2% → contain 9.0% → chaos 0%" in page
    assert page.count('role="img"') == 6  # ladder, latency, p99, strips, chaos timeline, history
    assert "<title>Minimal violating history" in page
    assert "2,150 of 5,000 (43% of periods)" in page
    assert page.count('class="replay"') == 5 + 2  # findings + fuzz failures


def test_charts_have_titles_and_descriptions(failed_run: RunManifest) -> None:
    page = html.render(failed_run)
    charts = re.findall(r"<svg [^>]*>(.*?)</svg>", page, flags=re.S)
    assert charts
    for chart in charts:
        assert chart.startswith("<title>") and "<desc>" in chart


def test_passed_and_partial_runs_render(passed_run: RunManifest, partial_run: RunManifest) -> None:
    passed = html.render(passed_run)
    assert "No invariant was violated." in passed and "stress 0%" in passed
    partial = html.render(partial_run)
    assert "SystemUnavailable" in partial and "No findings were recorded." in partial
    assert "\x1b" not in partial or "&lt;oops&gt;" in partial
    assert 'id="latency"' not in partial


def test_write_reports_writes_all_three(failed_run: RunManifest, tmp_path: Path) -> None:
    assert write_reports(failed_run, tmp_path) == ["report.html", "junit.xml", "summary.md"]
    assert all(
        (tmp_path / name).stat().st_size > 0 for name in ("report.html", "junit.xml", "summary.md")
    )
