"""A real ledger system (embedded PostgreSQL, two replicas, link proxies) for the chaos tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_support import pipeline_copy

from heisen.pipeline import load_pipeline
from heisen.system import SystemHandle


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[Path, SystemHandle]]:
    """Started per test: the supervisor's restarts are new processes the leak guard must see stopped."""
    root = tmp_path / "ledger"
    root.mkdir()
    path = pipeline_copy(root)
    system = SystemHandle(load_pipeline(path), root / "run", seed=5, run_id="chaostest")
    try:
        system.start()
        yield path, system
    finally:
        system.stop()
