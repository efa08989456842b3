"""A sustained load step in the background, its records streamed as they complete.

`StreamingLoad` runs one sustained step (inject, ramp_inject or constant)
in its own thread and event loop, through the same models as a trial's load
(`_workers.run_model`: open models send at their intended times whatever the
server does, so a request stuck behind a fault shows its full delay). Each
record is kept as it completes, so whoever watches the load (chaos' steady-
state probes) reads the window it judges while the load goes on, and a
cancelled load keeps what it measured.

Every request the model submits is counted apart from the records
(`SendCount`), so after `stop()` `missing_records()` says whether each one
has exactly one record. An exception in the load thread is kept in `error`
for the caller to report.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from heisen.schema import LoadStep
from heisen.stress._load import model_spec
from heisen.stress._records import RequestRecord, SendCount, missing_records
from heisen.stress._render import RequestFactory
from heisen.stress._workers import run_model

if TYPE_CHECKING:
    from heisen.system import TlsSettings


class StreamingLoad:
    """One sustained load step in its own thread; `stop()` cancels it.

    `default_request`: the scenario request a step without `request:`/`mix:` sends;
    `tls`: how to speak TLS to `address` (None: plain HTTP).
    """

    def __init__(
        self,
        step: LoadStep,
        factory: RequestFactory,
        *,
        address: tuple[str, int],
        default_request: str,
        timeout_s: float,
        tls: TlsSettings | None = None,
    ) -> None:
        host, port = address
        self.step = step
        self.factory = factory
        self.spec = model_spec(
            step,
            factory.for_step(step, default_request),
            host=host,
            port=port,
            timeout_s=timeout_s,
            tls=tls,
        )
        self._records: list[RequestRecord] = []
        self._sent = SendCount()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, name: str = "heisen-load") -> None:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Cancel the load (its requests in flight are recorded as "timeout") and wait for it."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not task.done():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has just closed
                pass
        self.join(timeout_s)

    def records(self) -> list[RequestRecord]:
        """The records so far (a copy), in the order they completed."""
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
        except BaseException as exc:  # reported by the caller
            self.error = exc

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            await run_model(self.spec, sink=self._sink, count=self._sent)
        except asyncio.CancelledError:
            pass
