"""Fixture manifests for the report formats, and a headless Chromium when this machine has one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from heisen.manifest import RunManifest

MANIFESTS = Path(__file__).parent / "manifests"
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_TIMEOUT_S = 300


def load(name: str) -> RunManifest:
    return RunManifest.model_validate(
        yaml.safe_load((MANIFESTS / f"{name}.yaml").read_text(encoding="utf-8"))
    )


@pytest.fixture
def failed_run() -> RunManifest:
    return load("failed")


@pytest.fixture
def passed_run() -> RunManifest:
    return load("passed")


@pytest.fixture
def partial_run() -> RunManifest:
    return load("partial")


@pytest.fixture
def error_run() -> RunManifest:
    return load("error")


@pytest.fixture
def environment_error_run() -> RunManifest:
    return load("error-environment")


@pytest.fixture
def inconclusive_run() -> RunManifest:
    return load("inconclusive")


@pytest.fixture
def bound_run() -> RunManifest:
    return load("bound")


def _try_install() -> str | None:
    """On CI as root, install Debian's chromium within a time bound; why not, when it can't."""
    if not os.environ.get("CI"):
        return "set CI=1 (as root) to let the tests install it with apt-get"
    if os.geteuid() != 0:
        return "installing it needs root (apt-get install chromium)"
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "chromium"],
        ):
            subprocess.run(
                command, env=env, check=True, capture_output=True, timeout=INSTALL_TIMEOUT_S
            )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"apt-get install chromium failed: {exc}"
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium binary, or a skip that says how to get it."""
    if not CHROMIUM.exists():
        reason = _try_install()
        if not CHROMIUM.exists():
            pytest.skip(
                f"headless browser check needs {CHROMIUM} (apt-get install chromium): {reason}"
            )
    return CHROMIUM


@pytest.fixture(
    params=[
        "failed",
        "passed",
        "partial",
        "error",
        "error-environment",
        "inconclusive",
        "bound",
        "target",
    ]
)
def any_run(request: pytest.FixtureRequest) -> RunManifest:
    return load(request.param)


@pytest.fixture
def target_run() -> RunManifest:
    """A ladder on no-oversell with sweeps, a severity: and predict's calibration."""
    return load("target")


@pytest.fixture
def chaos_fuzz_run() -> RunManifest:
    """From a real ticketing run: fuzz failures as fuzz writes them (labels, duplicates), a
    breached threshold, a skipped phase, and chaos's probes and named experiments."""
    return load("chaos-fuzz")
