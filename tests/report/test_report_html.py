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


class _Tables(HTMLParser):
    """Every table row as the text of its cells, with the table's class and section id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, list[str]]] = []
        self._section = ""
        self._table: list[str] = []
        self._cells: list[str] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section":
            self._section = values.get("id") or ""
        elif tag == "table":
            self._table.append(values.get("class") or "")
        elif tag == "tr":
            self._cells = []
        elif tag in ("td", "th") and self._cells is not None:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cells is not None and self._text is not None:
            self._cells.append(" ".join("".join(self._text).split()))
            self._text = None
        elif tag == "tr" and self._cells is not None:
            self.rows.append((self._section, self._table[-1] if self._table else "", self._cells))
            self._cells = None
        elif tag == "table" and self._table:
            self._table.pop()

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def _rows(page: str, section: str | None = None, table: str | None = None) -> list[list[str]]:
    parser = _Tables()
    parser.feed(page)
    return [
        cells
        for where, cls, cells in parser.rows
        if (section is None or where == section) and (table is None or cls == table)
    ]


def test_error_run_has_an_error_badge_and_the_invariant_trial_and_message(
    error_run: RunManifest,
) -> None:
    page = html.render(error_run)
    assert '<h1>heisen run error-run <span class="badge st-error">error</span></h1>' in page
    assert ".badge.st-error { background: var(--bad)" in page  # filled: unlike a failed badge
    message = "unknown name 'valu' in expect 'valu <= capacity' (the probe gave: sold, capacity)"
    assert ["3", "no-oversell", "pipeline", message] in _rows(page, "verdict")
    assert "the pipeline is at fault (exit 2); nothing here counts as held" in page
    ladder = _rows(page, "ladder")
    assert ["stress", "error", "—", "", "2"] == ladder[2][:5]
    assert "stress error" in page and "error: trial 3: no-oversell could not be evaluated" in page


def test_environment_error_lists_every_trial(environment_error_run: RunManifest) -> None:
    page = html.render(environment_error_run)
    message = "redis 127.0.0.1:6391: connection refused <Error 111>"
    rows = _rows(page, "verdict")
    assert ["4", "holds-expire", "environment", message] in rows
    assert ["5", "holds-expire", "environment", message] in rows
    assert "&lt;Error 111&gt;" in page and "<Error 111>" not in page


def test_inconclusive_run_has_its_badge_reason_and_no_zero_rate(
    inconclusive_run: RunManifest,
) -> None:
    page = html.render(inconclusive_run)
    assert '<span class="badge st-inconclusive">inconclusive</span></h1>' in page
    assert ".badge.st-inconclusive { border-style: dashed; }" in page
    reason = "0 throttled periods in 6 trials: the CPU limit never acted"
    assert f"<strong>contain</strong>: {reason}</p>" in page
    assert ["contain", "inconclusive", "—", "", "6", reason] in _rows(page, "ladder")
    assert f'class="muted inconclusive" text-anchor="start">inconclusive: {reason}</text>' in page
    assert "stress 0% → contain inconclusive" in page


def test_bounds_in_words(bound_run: RunManifest) -> None:
    rows = _rows(html.render(bound_run), "verdict")
    assert [
        "stress",
        "proven",
        "violation rate below 1% with 95% confidence (0 violations in 299 trials)",
        "24.1",
    ] in rows
    isolate = next(row for row in rows if row[0] == "isolate")
    assert isolate[1] == "not proven" and isolate[3] == "0.4"
    assert isolate[2] == (
        "not proven: 120 trials ran in the 5m budget; the rate is below 2.5% at 95% confidence "
        "(needed 299 trials without a violation for 1%)"
    )


def test_an_evidence_table_under_each_finding(failed_run: RunManifest) -> None:
    page = html.render(failed_run)
    evidence = _rows(page, "findings", "evidence")
    assert ["sold", "101"] in evidence and ["capacity", "100"] in evidence
    assert ["body.sold", "109"] in evidence and ["load.checkout.ok", "100"] in evidence
    assert ["body.event", '"<b>gala</b> [/]"'] in evidence
    assert not any(row[0] in ("timeline", "operations") for row in evidence)
    article = page.index("<h3>stress: no-oversell</h3>")
    assert article < page.index('<table class="evidence">', article) < page.index("replay-0")
