"""Real HTTP servers on 127.0.0.1 for the fuzz tests, each in its own thread and event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web

TICKETING_OPENAPI = Path(__file__).resolve().parents[2] / "examples" / "ticketing" / "openapi.yaml"


@contextmanager
def serve(make_app: Callable[[], web.Application]) -> Iterator[str]:
    """Run the app on an ephemeral port; yields its base URL; always stops it."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"] = runner
        host, port = runner.addresses[0][:2]
        box["url"] = f"http://{host}:{port}"

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # reported to the test below
            box["error"] = exc
        ready.set()
        if "error" not in box:
            loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "the test server did not start within 10 s"
        if "error" in box:
            raise RuntimeError("the test server failed to start") from box["error"]  # type: ignore[arg-type]
        yield str(box["url"])
    finally:
        runner = box.get("runner")
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
