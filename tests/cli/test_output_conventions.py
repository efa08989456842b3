"""Where heisen writes what: results on stdout, progress on stderr, plain ASCII for --ci, -h.

Runs the real CLI in a subprocess against a small HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from typer.testing import CliRunner

from heisen import events
from heisen.cli import app
from heisen.cli._throttle import ThrottledProgress
from heisen.console import ascii_text, make_console
from heisen.report import TerminalView
from support import heisen, write

BOX_DRAWING = {chr(code) for code in range(0x2500, 0x2580)}

PIPELINE = """\
apiVersion: heisen/v1
kind: Pipeline
name: streams
seed: 1
services:
  web: {url: "http://127.0.0.1:PORT"}
scenario:
  requests:
    v: {method: GET, path: /}
  load:
    - burst: {requests: 3}
phases:
  stress: {trials: 2}
"""


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads heisen's output, not the server's."""


@pytest.fixture
def web() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_adhoc_stress_prints_its_results_on_stdout(web: int) -> None:
    result = heisen("stress", "--url", f"http://127.0.0.1:{web}/", "--burst", "5")
    assert result.returncode == 0, result.stderr
    assert "status codes" in result.stdout and "200: 5" in result.stdout
    assert "status codes" not in result.stderr


def test_a_phase_run_puts_the_summary_on_stdout_and_progress_on_stderr(
    web: int, tmp_path: Path
) -> None:
    pipeline = write(tmp_path, PIPELINE.replace("PORT", str(web)))
    run_dir = tmp_path / "run"
    result = heisen("stress", str(pipeline), "--run-dir", str(run_dir), timeout=120)
    assert result.returncode in (0, 4), result.stderr
    assert "ladder:" in result.stdout and "report:" in result.stdout
    assert "ladder:" not in result.stderr
    assert "seed=1" in result.stderr and "stress" in result.stderr
    assert "seed=1" not in result.stdout


def test_ci_output_is_ascii_and_never_wrapped(web: int, tmp_path: Path) -> None:
    deep = tmp_path / ("a-directory-name-long-enough-to-pass-eighty-columns-" * 2) / "run"
    pipeline = write(tmp_path, PIPELINE.replace("PORT", str(web)))
    result = heisen("stress", str(pipeline), "--run-dir", str(deep), "--ci", columns=80)
    assert result.returncode in (0, 4), result.stderr
    for stream in (result.stdout, result.stderr):
        assert stream.isascii(), [c for c in stream if not c.isascii()]
        assert not BOX_DRAWING & set(stream)
        assert "▶" not in stream
    assert any(str(deep) in line for line in result.stderr.splitlines())  # "run dir: ..." whole
    assert any(str(deep / "manifest.yaml") in line for line in result.stdout.splitlines())
    assert not any(line != line.rstrip() for line in result.stdout.splitlines())


def test_a_pipe_without_columns_gets_unwrapped_lines(web: int, tmp_path: Path) -> None:
    deep = tmp_path / ("another-directory-name-that-is-long-enough-to-wrap-" * 2) / "run"
    pipeline = write(tmp_path, PIPELINE.replace("PORT", str(web)))
    result = subprocess.run(
        [sys.executable, "-m", "heisen", "stress", str(pipeline), "--run-dir", str(deep)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode in (0, 4), result.stderr
    assert any(str(deep) in line for line in result.stderr.splitlines())


def test_ascii_text_spells_out_symbols_and_boxes() -> None:
    assert ascii_text("▶ stress · 3 trials … ✗ café ─│┼") == "> stress - 3 trials ... x cafe -|+"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["validate"],
        ["init"],
        ["check"],
        ["predict"],
        ["stress"],
        ["fuzz"],
        ["isolate"],
        ["isolate", "run"],
        ["isolate", "serve"],
        ["contain"],
        ["chaos"],
        ["verify"],
        ["report"],
    ],
)
def test_dash_h_is_help_everywhere(command: list[str]) -> None:
    from heisen.cli import _commands  # noqa: F401  (registers the commands)

    short = CliRunner().invoke(app, [*command, "-h"])
    long = CliRunner().invoke(app, [*command, "--help"])
    assert short.exit_code == 0, short.output
    assert short.output.startswith("Usage:") and short.output == long.output


def test_only_and_skip_say_different_things() -> None:
    from heisen.cli import _commands  # noqa: F401

    shown = " ".join(CliRunner().invoke(app, ["run", "-h"], env={"COLUMNS": "200"}).output.split())
    only = shown.split("--only PHASE", 1)[1].split("--skip", 1)[0]
    skip = shown.split("--skip PHASE", 1)[1].split("--from", 1)[0]
    assert only != skip
    assert "e.g. --only stress" in only and "e.g. --skip" in skip


def test_isolate_pipeline_still_runs_the_phase(tmp_path: Path) -> None:
    result = heisen("isolate", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "missing.yaml" in result.stdout + result.stderr
    assert "No such command" not in result.stdout + result.stderr


def test_non_terminal_progress_is_at_most_one_line_a_second() -> None:
    """Chaos reports every 0.25 s: 80 reports over 20 s become about one line a second."""
    out = StringIO()
    console = make_console(stderr=True)
    console.file = out
    now = [0.0]
    sink = ThrottledProgress(TerminalView(console, live=False), clock=lambda: now[0])
    sink(events.PhaseStarted("chaos", None))
    for tick in range(1, 81):
        now[0] = tick * 0.25
        sink(events.Progress("chaos", f"{tick} requests", tick * 0.25, 20.0))
    progress = [line for line in out.getvalue().splitlines() if "requests" in line]
    assert 18 <= len(progress) <= 21
    assert progress[-1].endswith("80 requests")  # the last report always shows


def test_a_progress_message_without_a_count_is_never_dropped() -> None:
    out = StringIO()
    console = make_console(stderr=True)
    console.file = out
    sink = ThrottledProgress(TerminalView(console, live=False), clock=lambda: 5.0)
    sink(events.PhaseStarted("contain", None))
    sink(events.Progress("contain", "trial 1", 1, 3))
    sink(events.Progress("contain", "restoring counter to its own resources"))
    sink(events.Progress("contain", "restoring payments to its own resources"))
    assert "restoring counter" in out.getvalue() and "restoring payments" in out.getvalue()


def test_isolate_serve_port_0_prints_the_address_it_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "heisen", "isolate", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ", 1)[1].split()[0]
        assert not url.endswith(":0")
        with urllib.request.urlopen(f"{url}/__admin/mappings", timeout=5) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
    assert code == 0
