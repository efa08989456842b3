"""`target: hotspot`: from predict's ranked hotspots to a request of the scenario."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from heisen.errors import UsageError
from heisen.phase import PhaseContext


def _endpoint_parts(endpoint: Any) -> tuple[str, str]:
    """(METHOD, path) from predict's `{method, path, body}` or a 'POST /path' string."""
    if isinstance(endpoint, Mapping):
        return str(endpoint.get("method") or "GET").upper(), str(endpoint.get("path") or "")
    method, _, path = str(endpoint).strip().partition(" ")
    return method.upper(), path.strip()


def _path_pattern(path: str) -> re.Pattern[str]:
    """`/events/{event}/checkout` matches any one segment where `{event}` stands."""
    regex = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path.split("?")[0]))
    return re.compile(f"^{regex}$")


def hotspot_request(ctx: PhaseContext, rank: int) -> tuple[str, dict[str, Any]]:
    """The name of the scenario request that hotspot #rank's endpoint maps to, and the hotspot."""
    hotspots = ctx.outputs_of("predict").get("hotspots") or []
    if not hotspots:
        raise UsageError(
            "target: hotspot needs predict's hotspots: run `heisen predict` first on this run dir "
            "(--run-dir), or set phases.stress.target: scenario"
        )
    if rank > len(hotspots):
        raise UsageError(f"hotspot #{rank}: predict ranked only {len(hotspots)} hotspot(s)")
    hotspot = dict(hotspots[rank - 1])
    endpoint = hotspot.get("endpoint")
    if not endpoint:
        raise UsageError(
            f"hotspot #{rank} ({hotspot.get('boundary')}) names no endpoint: "
            "give its operation an endpoint: in architecture.yaml"
        )
    method, path = _endpoint_parts(endpoint)
    pattern = _path_pattern(path)
    requests = ctx.pipeline.scenario.requests
    for name, request in requests.items():
        template_path = re.sub(r"\{\{[^}]*\}\}", "x", request.path.split("?")[0])
        if request.method.upper() == method and pattern.match(template_path):
            return name, hotspot
    known = ", ".join(f"{name} ({r.method.upper()} {r.path})" for name, r in requests.items())
    raise UsageError(
        f"hotspot #{rank} ({hotspot.get('boundary')}) is {method} {path}, but no scenario request "
        f"matches it (scenario.requests: {known}); add a request for it under scenario.requests"
    )
