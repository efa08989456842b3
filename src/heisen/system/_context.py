"""What `{{ … }}` in a service's `command:` and `env:` sees: the same shape on this machine and on a cluster."""

from __future__ import annotations

from typing import TypedDict


class Endpoint(TypedDict):
    url: str
    host: str
    port: int


class DependencyEndpoint(Endpoint):
    dsn: str


class TemplateContext(TypedDict):
    deps: dict[str, DependencyEndpoint]
    services: dict[str, Endpoint]
    python: str
    run_dir: str
    seed: int
    replica: int
