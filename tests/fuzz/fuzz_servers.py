"""Real HTTP servers on 127.0.0.1 for the fuzz tests, each in its own thread and event loop."""

from __future__ import annotations

from pathlib import Path

from support import serve_app as serve

__all__ = ["TICKETING_OPENAPI", "serve"]

TICKETING_OPENAPI = Path(__file__).resolve().parents[2] / "examples" / "ticketing" / "openapi.yaml"
