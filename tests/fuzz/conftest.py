from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_servers import TICKETING_OPENAPI


@pytest.fixture
def ticketing_openapi() -> Path:
    return TICKETING_OPENAPI
