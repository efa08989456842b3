"""`heisen isolate serve`: the stub server alone, a drop-in for WireMock standalone; Ctrl-C stops it."""

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from heisen.system import free_port, wait_for_port

TREE = Path(__file__).parent.parent / "system" / "stub" / "stub_tree"


def test_serve_answers_from_the_mapping_tree_and_stops_on_ctrl_c():
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "heisen",
            "isolate",
            "serve",
            "--root",
            str(TREE),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        assert wait_for_port("127.0.0.1", port, 20.0), (
            process.stderr.read1().decode() if process.poll() else ""
        )
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/__admin/mappings", timeout=5
        ) as response:
            mappings = json.loads(response.read())["mappings"]
        assert mappings, "the tree's mappings are loaded"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
    assert code == 0
