"""`target: hotspot`: from predict's ranked hotspots to a request of the scenario."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heisen.errors import UsageError
from heisen.phase import PhaseContext


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
    name = ctx.pipeline.request_at(endpoint)
    if name is not None:
        return name, hotspot
    requests = ctx.pipeline.scenario.requests
    known = ", ".join(f"{other} ({r.method.upper()} {r.path})" for other, r in requests.items())
    raise UsageError(
        f"hotspot #{rank} ({hotspot.get('boundary')}) is {_shown(endpoint)}, but no scenario request "
        f"matches it (scenario.requests: {known}); add a request for it under scenario.requests"
    )


def _shown(endpoint: Any) -> str:
    if isinstance(endpoint, Mapping):
        return f"{str(endpoint.get('method') or 'GET').upper()} {endpoint.get('path') or ''}"
    return str(endpoint).strip()
