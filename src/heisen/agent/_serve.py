"""`heisen agent --plan FILE`: run one phase where the system is, and stream its records.

The phase is the very code `heisen run` runs, on a KubeSystem attached to
the plan's addresses (it applies nothing and deletes nothing: the driver owns
the namespace). Whatever ends the phase ends up as a record: its result, or
its error with what it measured before; the exit code is the error's.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path
from typing import TextIO

from heisen import __version__, events
from heisen.agent import _wire
from heisen.agent._plan import AgentPlan
from heisen.errors import EXIT_ENVIRONMENT, HeisenError, NotEvaluated
from heisen.manifest import RunManifest
from heisen.phase import PhaseContext
from heisen.schema import PhaseName

MAX_ARTIFACT_BYTES = 16 * 1024 * 1024


class _Out:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, record: str) -> None:
        for line in _wire.lines_of(record):
            self._stream.write(line + "\n")
        self._stream.flush()

    def event(self, event: events.Event) -> None:
        record = _wire.event_record(event)
        if record is not None:
            self.write(record)


def serve(plan: AgentPlan, out: TextIO, work: Path | None = None) -> int:
    """Run the plan's phase; every record goes to `out`. Returns the exit code."""
    with tempfile.TemporaryDirectory(prefix="heisen-agent-") as scratch:
        return _serve(plan, _Out(out), Path(work or scratch))


def _serve(plan: AgentPlan, out: _Out, work: Path) -> int:
    from heisen.runner import PHASES
    from heisen.system import KubeSystem

    out.write(_wire.encode("hello", version=__version__, phase=plan.phase))
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    system: KubeSystem | None = None
    try:
        loaded = plan.materialise(work / "pipeline")
        system = KubeSystem.attached(
            loaded,
            namespace=plan.namespace,
            labels=plan.labels,
            limits=plan.resources(),
            reach=plan.addresses,
            cluster=plan.cluster,
            in_cluster=plan.in_cluster,
            kubeconfig=plan.kubeconfig,
        )
        name = PhaseName(plan.phase)
        context = PhaseContext(
            loaded=loaded,
            manifest=RunManifest.model_validate(plan.manifest),
            system=system,
            seed=plan.seed,
            run_dir=run_dir,
            emit=out.event,
            options=plan.options,
        )
        result = PHASES[name]().run(context)
        _send_artifacts(out, run_dir, result.artifacts)
        out.write(_wire.result_record(result))
        return 0
    except HeisenError as exc:
        _send_artifacts(out, run_dir, [p.name for p in run_dir.glob("*.jsonl")])
        out.write(
            _wire.encode(
                "error",
                type=type(exc).__name__,
                message=str(exc),
                fault=exc.fault if isinstance(exc, NotEvaluated) else None,
                outputs=getattr(exc, "outputs", None),
                findings=[f.to_dict() for f in getattr(exc, "findings", None) or []],
            )
        )
        return exc.exit_code
    except Exception as exc:
        out.write(
            _wire.encode(
                "error",
                type="PhaseCrashed",
                message=f"{plan.phase} in the agent: heisen failed: {type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )
        )
        return EXIT_ENVIRONMENT
    finally:
        if system is not None:
            system.stop()


def _send_artifacts(out: _Out, run_dir: Path, names: list[str]) -> None:
    for name in names:
        path = run_dir / name
        if not path.is_file() or path.stat().st_size > MAX_ARTIFACT_BYTES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        out.write(_wire.encode("artifact", name=name, text=text))
