"""predict's observe-mode results in the HTML, Markdown and terminal reports; model mode as before."""

from __future__ import annotations

import re
from typing import Any

import pytest

from heisen import events as ev
from heisen.console import make_console
from heisen.manifest import RunManifest
from heisen.report import html, markdown
from heisen.report._terminal import TerminalView

CHECKOUT_EVIDENCE = [
    "+4.5ms inventory->redis GET inventory:concert -> 100",
    "+43.7ms inventory->redis DECRBY inventory:concert 1 -> 99",
]
HOSTILE_EVIDENCE = (
    "update: +17.7ms inventory->redis SET event:concert <script>x</script> [red]``` -> OK"
)


def _hotspot(**fields: Any) -> dict[str, Any]:
    return {
        "boundary": "inventory → redis",
        "service": "inventory",
        "resource": "redis",
        "score": 50.0,
        "predicted_violation_rate": 1.0,
        "load": {"requests": 64, "window_ms": 500.0},
        "seen": "5/5",
        **fields,
    }


def _observed_outputs() -> dict[str, Any]:
    return {
        "mode": "observe",
        "hotspots": [
            _hotspot(
                anomaly="check-then-act",
                request="checkout",
                operation="checkout",
                endpoint={"method": "POST", "path": "/events/concert/checkout"},
                key="inventory:concert",
                window_ms=36.684,
                window_spread_ms={"median": 36.684, "p90": 45.004, "max": 45.004, "samples": 5},
                smallest_reproducing_burst=16,
                evidence=CHECKOUT_EVIDENCE,
            ),
            _hotspot(
                anomaly="stale-cache",
                request="read",
                operation="read",
                pair="update",
                endpoint={"method": "GET", "path": "/events/concert"},
                key="event:concert",
                score=0.0,
                predicted_violation_rate=0.0,
                window_ms=1.825,
                window_spread_ms={"median": 1.825, "p90": 2.5, "max": 3.0, "samples": 4},
                seen="4/5",
                smallest_reproducing_burst=None,
                evidence=[
                    "read: +5.4ms inventory->redis SET event:concert 1 EX 300",
                    HOSTILE_EVIDENCE,
                ],
            ),
        ],
        "protected": [
            _hotspot(
                anomaly="lost-update",
                resource="postgres",
                request="update",
                endpoint={"method": "PUT", "path": "/events/concert"},
                table="events",
                window_ms=4.2,
                window_spread_ms={"median": 4.2, "p90": 5.0, "max": 5.0, "samples": 5},
                evidence=["+3.1ms inventory->postgres SELECT capacity FROM events FOR UPDATE"],
                protected="SELECT ... FOR UPDATE",
            ),
            _hotspot(
                anomaly="check-then-act",
                request="hold",
                endpoint={"method": "POST", "path": "/events/concert/hold"},
                key="hold:concert",
                window_ms=2.0,
                protected="the lock lock:event:concert",
            ),
        ],
        "observed": {
            "links": {"inventory->redis": "redis", "inventory->postgres": "postgres"},
            "requests": [
                {
                    "request": "checkout",
                    "endpoint": {"method": "POST", "path": "/events/concert/checkout"},
                    "sends": 5,
                    "replicas": [0, 1, 2],
                    "operations": {"inventory->postgres": 2, "inventory->redis": 5},
                    "latency_ms": 44.297,
                },
                {
                    "request": "read",
                    "endpoint": {"method": "GET", "path": "/events/concert"},
                    "sends": 5,
                    "replicas": [1],
                    "operations": {"inventory->redis": 3},
                    "latency_ms": 22.4,
                },
            ],
            "background": 33,
            "elapsed_s": 4.29,
        },
        "load": {"requests": 64, "window_ms": 500.0},
    }


def _manifest(outputs: dict[str, Any]) -> RunManifest:
    return RunManifest.model_validate(
        {
            "apiVersion": "heisen/v1",
            "kind": "RunManifest",
            "run": {
                "id": "observe-run",
                "pipeline": "examples/ticketing/pipeline.yaml",
                "pipeline_sha256": "0" * 64,
                "seed": 42,
                "started_at": "2026-12-01T23:31:15.330Z",
                "finished_at": "2026-12-01T23:31:29.058Z",
                "heisen_version": "0.1.0",
            },
            "status": "passed",
            "phases": {
                "predict": {
                    "status": "passed",
                    "duration_s": 12.9,
                    "summary": "observed 10 sends of 2 request(s)",
                    "outputs": outputs,
                }
            },
        }
    )


@pytest.fixture
def observed_run() -> RunManifest:
    return _manifest(_observed_outputs())


def _section(page: str, anchor: str) -> str:
    found = re.search(f'<section id="{anchor}".*?</section>', page, re.S)
    assert found is not None, anchor
    return found.group()


def test_html_shows_each_hotspot_with_its_evidence(observed_run: RunManifest) -> None:
    section = _section(html.render(observed_run), "hotspots")
    assert "<code>POST /events/concert/checkout</code>" in section
    assert "<code>inventory:concert</code>" in section and "check-then-act" in section
    assert "36.7 ms (p90 45 ms)" in section and "5/5" in section and "4/5" in section
    assert "<td class=num>16</td>" in section and "none up to 64" in section
    assert "100% at 64" in section
    assert 'stale-cache <span class="muted">with update</span>' in section
    evidence = "\n".join(CHECKOUT_EVIDENCE).replace(">", "&gt;")
    assert f'<tr><td colspan="8"><pre>{evidence}</pre></td></tr>' in section
    assert "&lt;script&gt;x&lt;/script&gt;" in section and "<script>x" not in section


def test_html_lists_protected_patterns_and_what_guards_them(observed_run: RunManifest) -> None:
    protected = _section(html.render(observed_run), "hotspots").partition(
        '<h3 id="protected">Protected patterns</h3>'
    )[2]
    assert "<code>table events</code>" in protected and "SELECT ... FOR UPDATE" in protected
    assert "the lock lock:event:concert" in protected and "<code>hold:concert</code>" in protected
    assert "SELECT capacity FROM events FOR UPDATE</pre>" in protected


def test_html_shows_the_observed_traffic_per_link(observed_run: RunManifest) -> None:
    traffic = _section(html.render(observed_run), "hotspots").partition(
        '<h3 id="observed">Observed traffic</h3>'
    )[2]
    assert "<code>inventory-&gt;redis</code> (redis)" in traffic
    assert "<code>inventory-&gt;postgres</code> (postgres)" in traffic
    assert "10 sends in 4.29 s; 33 operations no request sent" in traffic
    # checkout: 2 on postgres, 5 on redis; read: none on postgres, 3 on redis
    assert "<td class=num>2</td><td class=num>5</td></tr>" in traffic
    assert "<td class=num>0</td><td class=num>3</td></tr>" in traffic


def test_html_says_when_nothing_unguarded_showed() -> None:
    outputs = {**_observed_outputs(), "hotspots": []}
    section = _section(html.render(_manifest(outputs)), "hotspots")
    assert "No unguarded race pattern showed" in section
    assert "the lock lock:event:concert" in section


def test_markdown_gives_the_top_hotspot_with_its_evidence_and_what_is_protected(
    observed_run: RunManifest,
) -> None:
    text = markdown.render(observed_run)
    assert (
        "**Top hotspot:** check-then-act on inventory:concert in checkout: window 36.7 ms "
        "(p90 45 ms), seen 5/5 (score 50.0, smallest reproducing burst 16)"
    ) in text
    assert "```\n" + "\n".join(CHECKOUT_EVIDENCE) + "\n```" in text
    assert "1 more hotspot in the HTML report." in text
    assert "**2 protected patterns:**" in text
    assert "- lost-update on table events in update (by SELECT ... FOR UPDATE)" in text
    assert "- check-then-act on hold:concert in hold (by the lock lock:event:concert)" in text


def _terminal(
    phase: ev.PhaseFinished, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    TerminalView(make_console(), live=False)(phase)
    return capsys.readouterr().err


def test_terminal_prints_hotspots_with_evidence_then_protected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = _observed_outputs()
    outputs["hotspots"] += [
        _hotspot(anomaly="lost-update", request=f"r{i}", key=f"k{i}", window_ms=1.0)
        for i in range(3)
    ]
    out = _terminal(
        ev.PhaseFinished("predict", "passed", "observed", 12.9, outputs), monkeypatch, capsys
    )
    assert "\x1b" not in out
    assert (
        "  hotspot: check-then-act on inventory:concert in checkout: window 36.7 ms (p90 45 ms), "
        "seen 5/5\n"
        "      +4.5ms inventory->redis GET inventory:concert -> 100\n"
        "      +43.7ms inventory->redis DECRBY inventory:concert 1 -> 99\n"
        "  hotspot: stale-cache on event:concert in read with update: window 1.82 ms (p90 2.5 ms), "
        "seen 4/5\n"
    ) in out
    assert f"      {HOSTILE_EVIDENCE}\n" in out  # rich markup in the evidence stays text
    assert "hotspot: lost-update on k0 in r0" in out and "k1" not in out
    assert "  … and 2 more in the report\n" in out
    assert "  protected: lost-update on table events in update (by SELECT ... FOR UPDATE)\n" in out
    assert (
        "  protected: check-then-act on hold:concert in hold (by the lock lock:event:concert)\n"
        in out
    )


# Rendered before observe mode existed: model-mode hotspots must keep this exact table.
_MODEL_HOTSPOTS = (
    '<section id="hotspots" aria-labelledby="hotspots-h"><h2 id="hotspots-h">Predicted hotspots</h2>'
    '<table><thead><tr><th scope="col">boundary</th><th scope="col">service</th>'
    '<th scope="col">resource</th><th scope="col">anomaly</th><th scope="col" class=num>score</th>'
    '<th scope="col" class=num>predicted rate</th><th scope="col" class=num>95% CI</th>'
    '<th scope="col">load</th></tr></thead><tbody><tr><td>inventory-&gt;postgres</td>'
    "<td>inventory</td><td>table seats</td><td>lost-update</td><td class=num>0.91</td>"
    "<td class=num>0.30%</td><td class=num>0.12% \N{EN DASH} 0.71%</td><td>200 req / 5 ms</td></tr>"
    "<tr><td>inventory-&gt;redis</td><td>inventory</td><td>key hold:&lt;seat&gt;</td>"
    "<td>stale-read</td><td class=num>0.42</td><td class=num>0.08%</td>"
    "<td class=num>0.01% \N{EN DASH} 0.30%</td><td>200 req / 5 ms</td></tr></tbody></table></section>"
)
_MODEL_PHASES_THEN_FINDINGS = """\
| chaos | passed | 40.9s | 0/200 trials violated with 2 experiments; steady state held, nothing lost |

### Findings (5)
"""


def test_model_mode_renders_as_before(
    failed_run: RunManifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _section(html.render(failed_run), "hotspots") == _MODEL_HOTSPOTS
    text = markdown.render(failed_run)
    assert _MODEL_PHASES_THEN_FINDINGS in text and "Observed race patterns" not in text
    predict = failed_run.phases["predict"]
    out = _terminal(
        ev.PhaseFinished("predict", "passed", predict.summary or "", 1.4, predict.outputs),
        monkeypatch,
        capsys,
    )
    assert (
        out == "  passed in 1.4s: top hotspot: inventory->postgres lost-update (predicted 0.3%)\n"
    )
