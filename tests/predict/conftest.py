from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from heisen._yaml import load_yaml_text
from heisen.predict._architecture import load_architecture, parse_architecture
from heisen.predict._model import Architecture

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ticketing"


@pytest.fixture(scope="session")
def example_dir() -> Path:
    return EXAMPLE


@pytest.fixture(scope="session")
def ticketing() -> Architecture:
    return load_architecture(EXAMPLE / "architecture.yaml")


@pytest.fixture(scope="session")
def build() -> Callable[[str], Architecture]:
    def architecture_from(text: str) -> Architecture:
        return parse_architecture(load_yaml_text(text, source="architecture.yaml"))

    return architecture_from
