"""A fresh copy of the counter service and its pipeline for each test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "system"))  # kube_fake, the FAKE API server

from contain_support import COUNTER


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    target = tmp_path / "counter"
    shutil.copytree(COUNTER, target)
    return target
