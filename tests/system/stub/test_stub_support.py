"""Shared helpers for the stub tests: a real StubServer on 127.0.0.1 in a thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from heisen.system.stub import StubServer

TREE = Path(__file__).parent / "stub_tree"


class ThreadedStub:
    """Runs a StubServer on its own event loop thread; `with ThreadedStub(root) as stub:`."""

    def __init__(self, root: Path | None = TREE, **options: Any) -> None:
        self.server = StubServer(root, **options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> ThreadedStub:
        self.thread.start()
        self.call(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
