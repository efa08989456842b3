"""The driver's side: read an agent's records back into events, artifacts and a PhaseResult.

An error record becomes the same error here (a `NotEvaluated` keeps its
fault, outputs and findings), so the runner records a phase run by the agent
exactly as one it ran itself. An agent that ends without a result or an error
is an environment failure that quotes the last lines it wrote: never a verdict.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from heisen import __version__, events
from heisen._serialised import JsonObject
from heisen.agent import _wire
from heisen.agent._plan import AgentPlan
from heisen.errors import (
    HeisenError,
    NotEvaluated,
    PhaseCrashed,
    SystemUnavailable,
    UsageError,
)
from heisen.events import EventSink
from heisen.phase import PhaseResult


def collect(lines: Iterable[str], sink: EventSink, run_dir: Path, where: str) -> PhaseResult:
    """The phase's result from the agent's output lines (`where` names the agent in errors)."""
    reader = _wire.Reader()
    artifacts: dict[str, str] = {}
    hello = False
    for line in lines:
        record = reader.feed(line)
        if record is None:
            continue
        kind = record["kind"]
        if kind == "hello":
            hello = True
            if record.get("version") != __version__:
                sink(
                    events.Warning(
                        str(record.get("phase")),
                        f"{where} runs heisen {record.get('version')}, this is {__version__}: "
                        "build the agent's image from this version (docs/kubernetes.md)",
                    )
                )
        elif kind == "event":
            sink(_wire.event_of(record))
        elif kind == "artifact":
            artifacts[str(record["name"])] = str(record["text"])
        elif kind in ("result", "error"):
            _write_artifacts(run_dir, artifacts)
            if kind == "result":
                return _wire.result_of(record)
            raise error_of(record, where)
    said = "\n".join(reader.other[-20:])
    started = "" if hello else " (it never started heisen: is the image heisen's agent?)"
    raise SystemUnavailable(
        f"{where} ended without a result{started}" + (f"; its last lines:\n{said}" if said else "")
    )


def error_of(record: JsonObject, where: str) -> HeisenError:
    kind, message = str(record["type"]), str(record["message"])
    outputs = record.get("outputs") if isinstance(record.get("outputs"), dict) else None
    findings = _wire.findings_of(record.get("findings"))
    if kind == "NotEvaluated":
        return NotEvaluated(
            message,
            fault=str(record.get("fault")),
            outputs=outputs,
            findings=findings,
        )
    if kind in ("UsageError", "PipelineError"):
        return UsageError(f"{where}: {message}")
    if kind == "SystemUnavailable":
        return SystemUnavailable(f"{where}: {message}")
    return PhaseCrashed(f"{where}: {message}", outputs=outputs, findings=findings)


def _write_artifacts(run_dir: Path, artifacts: dict[str, str]) -> None:
    for name, text in artifacts.items():
        path = (run_dir / name).resolve()
        if path.parent == run_dir.resolve():  # a bare file name, nothing else
            path.write_text(text, encoding="utf-8")


def run_local(plan: AgentPlan, sink: EventSink, run_dir: Path) -> PhaseResult:
    """Run the agent as a subprocess on this machine, over the same records."""
    with tempfile.TemporaryDirectory(prefix="heisen-plan-") as folder:
        plan_path = Path(folder) / "plan.json"
        plan_path.write_text(plan.to_json(), encoding="utf-8")
        with subprocess.Popen(
            [sys.executable, "-m", "heisen", "agent", "--plan", str(plan_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        ) as agent:
            assert agent.stdout is not None
            try:
                result = collect(agent.stdout, sink, run_dir, "the local agent")
            except BaseException:
                agent.terminate()
                raise
            agent.wait(timeout=60)
            return result
