"""Run `heisen predict` in observe mode on a pipeline, as a user does, and read what it wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import heisen

OBSERVE = Path(__file__).resolve().parent / "observe"
TICKETING = Path(__file__).resolve().parents[2] / "examples" / "ticketing"


@dataclass
class Predicted:
    returncode: int
    outputs: dict[str, Any]
    stderr: str
    status: str

    @property
    def top(self) -> dict[str, Any]:
        assert self.outputs["hotspots"], f"no hotspot ranked: {self.stderr[-2000:]}"
        hotspot: dict[str, Any] = self.outputs["hotspots"][0]
        return hotspot

    def protected(self, anomaly: str) -> list[str]:
        return [
            p["protected"] for p in self.outputs.get("protected", []) if p["anomaly"] == anomaly
        ]


def predict(pipeline: Path, run_dir: Path, *args: str) -> Predicted:
    result = heisen("predict", str(pipeline), "--run-dir", str(run_dir), "--json", *args)
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    record = (document.get("phases") or {}).get("predict") or {}
    return Predicted(
        result.returncode, record.get("outputs") or {}, result.stderr, record.get("status", "")
    )
