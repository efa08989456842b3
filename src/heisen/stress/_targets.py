"""`target: hotspot`: from predict's ranked hotspots to a request of the scenario."""

from __future__ import annotations

import re
from typing import Any

from heisen.errors import UsageError
from heisen.phase import PhaseContext


def _endpoint_pattern(endpoint: str) -> tuple[str, re.Pattern[str]]:
    method, _, path = endpoint.strip().partition(" ")
    regex = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path.strip()))
    return method.upper(), re.compile(f"^{regex}$")


def hotspot_request(ctx: PhaseContext, rank: int) -> tuple[str, dict[str, Any]]:
    """The name of the scenario request that hotspot #rank's endpoint maps to, and the hotspot."""
    hotspots = ctx.outputs_of("predict").get("hotspots") or []
    if not hotspots:
        raise UsageError("target: hotspot needs predict's hotspots: run `heisen predict` first on this run dir")
    if rank > len(hotspots):
        raise UsageError(f"--hotspot {rank}: predict ranked only {len(hotspots)} hotspot(s)")
    hotspot = hotspots[rank - 1]
    endpoint = hotspot.get("endpoint")
    if not endpoint:
        raise UsageError(f"hotspot #{rank} ({hotspot.get('boundary')}) names no endpoint in architecture.yaml")
    method, pattern = _endpoint_pattern(endpoint)
    for name, request in ctx.pipeline.scenario.requests.items():
        template_path = re.sub(r"\{\{[^}]*\}\}", "x", request.path.split("?")[0])
        if request.method.upper() == method and pattern.match(template_path):
            return name, hotspot
    raise UsageError(f"hotspot #{rank} maps to {endpoint}, but no scenario request matches it; add one")
