"""The chaos load: the scenario's requests in an open-model loop, in a thread.

`rate` requests/s for `duration` through the service's front proxy, sent at
their intended times whatever the faults do (coordinated omission corrected:
a request stuck behind a killed replica shows its full delay). Every record
reaches `records` as it completes, so steady-state probes read the window
they judge, and a cancelled load keeps what it measured.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from heisen._schema._system import Inject, LoadStep
from heisen.stress._records import RequestRecord, SendCount, missing_records
from heisen.stress._render import RequestFactory


def chaos_step(pipeline: Any, rate: float, duration: float) -> LoadStep:
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


class ChaosLoad:
    """An open-model load in its own thread and event loop; `stop()` cancels it."""

    def __init__(
        self, pipeline: Any, address: tuple[str, int], factory: RequestFactory, step: LoadStep
    ) -> None:
        self.address = address
        self.factory = factory
        self.step = step
        self.timeout_s = float(pipeline.scenario.timeout)
        self.make = factory.for_step(step, next(iter(pipeline.scenario.requests)))
        self._records: list[RequestRecord] = []
        self._sent = SendCount()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heisen-chaos-load", daemon=True)
        self._thread.start()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not task.done():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has just closed
                pass
        self.join(timeout_s)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def missing_records(self) -> str | None:
        """After `stop()`: None when every request sent has exactly one record."""
        return missing_records(self.records(), self._sent.requests)

    def _sink(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the phase
            self.error = exc

    async def _main(self) -> None:
        from heisen.stress import _models

        assert self.step.inject is not None
        self._loop = asyncio.get_running_loop()
        host, port = self.address
        self._task = asyncio.current_task()
        try:
            await _models.inject(
                self.step.inject.rate,
                self.step.inject.during,
                host=host,
                port=port,
                make_request=self.make,
                timeout_s=self.timeout_s,
                sink=self._sink,
                count=self._sent,
            )
        except asyncio.CancelledError:
            pass
