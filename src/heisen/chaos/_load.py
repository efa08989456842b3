"""The chaos load: the scenario's requests in an open-model loop, in the background.

`rate` requests/s for `duration` through the service's front proxy, sent at
their intended times whatever the faults do (coordinated omission corrected:
a request stuck behind a killed replica shows its full delay). It runs on the
scenario engine's `StreamingLoad`: every record is kept as it completes, so
steady-state probes read the window they judge, and a cancelled load keeps
what it measured.
"""

from __future__ import annotations

from pathlib import Path

from heisen.schema import Inject, LoadStep, Pipeline
from heisen.stress import RequestFactory, StreamingLoad
from heisen.system import service_tls

THREAD_NAME = "heisen-chaos-load"


def chaos_step(pipeline: Pipeline, rate: float, duration: float) -> LoadStep:
    """The scenario's request (or mix) of its first sustained step, at `rate` for `duration`."""
    for step in pipeline.scenario.load:
        if step.kind == "pause":
            continue
        model = getattr(step, step.kind)
        if model.mix is not None:
            return LoadStep(inject=Inject(rate=rate, during=duration, mix=model.mix))
        if model.request is not None:
            return LoadStep(inject=Inject(rate=rate, during=duration, request=model.request))
        break
    return LoadStep(
        inject=Inject(rate=rate, during=duration, request=next(iter(pipeline.scenario.requests)))
    )


def chaos_load(
    pipeline: Pipeline,
    address: tuple[str, int],
    factory: RequestFactory,
    step: LoadStep,
    *,
    service: str | None = None,
    base_dir: Path = Path(),
) -> StreamingLoad:
    """The load of `step` against `address`, the front of `service` (None: the first), not
    started yet; over TLS for an https service, with its `tls:` (paths from `base_dir`)."""
    return StreamingLoad(
        step,
        factory,
        address=address,
        default_request=next(iter(pipeline.scenario.requests)),
        timeout_s=float(pipeline.scenario.timeout),
        tls=service_tls(pipeline, service, base_dir),
    )
