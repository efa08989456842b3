"""`heisen agent --plan FILE`: heisen's load agent (in a pod on Kubernetes; a subprocess in tests).

It is started by the runner, not by hand: the plan is what a cluster phase
needs (see heisen.agent). Records go to stdout, one per line; the exit code
is the phase's error's, 0 when the phase produced a result.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from heisen.cli._app import app


@app.command("agent")
def agent_command(
    plan: Annotated[
        Path,
        typer.Option(
            "--plan",
            help="The plan the runner wrote (JSON: the phase, the pipeline's files, addresses).",
            exists=True,
            dir_okay=False,
        ),
    ],
) -> None:
    """Run one phase where the system is and stream its records (started by heisen itself)."""
    from heisen.agent import AgentPlan, serve

    raise typer.Exit(serve(AgentPlan.from_json(plan.read_text(encoding="utf-8")), sys.stdout))
