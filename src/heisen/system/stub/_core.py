"""What the stub decides for one request, independent of sockets.

`StubCore.select` finds the winning mapping and applies its scenario
transition in one synchronous step (see `_scenarios` for why that makes
scenarios atomic). `delay_s` samples the delay before the first byte:

    (stub fixedDelayMilliseconds, else global fixedDelay)
      + a sample of the global delayDistribution
      + a sample of the stub's delayDistribution

all from one RNG seeded with `--seed`, so a run's delays can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from heisen.system.stub._delays import Distribution
from heisen.system.stub._http import HttpRequest
from heisen.system.stub._journal import Journal
from heisen.system.stub._mappings import Mapping, load_mappings
from heisen.system.stub._registry import Registry
from heisen.system.stub._responses import ResponseSpec, render_head
from heisen.system.stub._scenarios import Scenarios


@dataclass(frozen=True, slots=True)
class Settings:
    fixed_delay_ms: float | None = None
    distribution: Distribution | None = None


class StubCore:
    def __init__(
        self,
        root: Path | None,
        *,
        seed: int = 0,
        journal_limit: int = 10_000,
        allow_hosts: Collection[str] = (),
    ) -> None:
        self.root = root
        self.allow_hosts = tuple(allow_hosts)  # where a proxyBaseUrl may point besides loopback
        self.files_dir = root / "__files" if root is not None else None
        self.seed = seed
        self.rng = random.Random(seed)
        self.scenarios = Scenarios()
        self.registry = Registry(self.scenarios)
        self.journal = Journal(journal_limit)
        self.settings = Settings()
        self.defaults: list[Mapping] = (
            load_mappings(root, self.allow_hosts) if root is not None else []
        )
        for mapping in self.defaults:
            self.registry.add(mapping)

    def reset_mappings(self) -> None:
        """Back to the mappings read from the root directory, scenarios at Started."""
        self.registry.clear()
        self.scenarios.forget_all()
        for mapping in self.defaults:
            self.registry.add(mapping)

    def select(self, request: HttpRequest) -> Mapping | None:
        mapping = self.registry.find(request)
        if mapping is not None and mapping.scenario is not None and mapping.new_state is not None:
            self.scenarios.move(mapping.scenario, mapping.new_state)
        return mapping

    def delay_s(self, spec: ResponseSpec) -> float:
        settings = self.settings
        fixed = spec.fixed_delay_ms if spec.fixed_delay_ms is not None else settings.fixed_delay_ms
        total = fixed or 0.0
        if settings.distribution is not None:
            total += settings.distribution.sample(self.rng)
        if spec.distribution is not None:
            total += spec.distribution.sample(self.rng)
        return total / 1000.0

    def has_global_delay(self) -> bool:
        return self.settings.fixed_delay_ms is not None or self.settings.distribution is not None

    def not_found(self, request: HttpRequest, *, close: bool) -> bytes:
        body = self.mismatch_report(request).encode("utf-8")
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        return render_head(404, "Not Found", headers, None, len(body), close) + body

    def mismatch_report(self, request: HttpRequest) -> str:
        lines = [
            "Request was not matched",
            "=======================",
            "",
            f"Request: {request.method} {request.target}",
            "",
        ]
        near = self.registry.nearest(request)
        if near is None:
            lines.append("No stub mappings are loaded.")
            return "\n".join(lines) + "\n"
        lines.append(f"Closest stub: {near.mapping.label}")
        if near.mapping.source:
            lines.append(f"  from {near.mapping.source}")
        lines.append("")
        width = max(len(c.label) for c in near.checks)
        for check in near.checks:
            verdict = "ok" if check.ok else "<<<<< does not match"
            lines.append(f"  {check.label.ljust(width)}  {check.expected}  {verdict}")
        return "\n".join(lines) + "\n"
