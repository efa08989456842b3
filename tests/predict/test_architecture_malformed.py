"""Malformed architecture.yaml and incidents.yaml: always a located PipelineError, never a traceback."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

import mutations
from heisen._yaml import YamlDocument, load_yaml_text
from heisen.errors import PipelineError
from heisen.predict._architecture import (
    load_architecture,
    load_incidents,
    parse_architecture,
    parse_incidents,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ticketing"
ARCHITECTURE = (EXAMPLE / "architecture.yaml").read_text()
INCIDENTS = (EXAMPLE / "incidents.yaml").read_text()
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 2**70, 1e400, float("nan"), -1e9, "", "x", "5ms", "-5ms", "nanms",
    [], {}, [1], {"a": 1}, [[[[]]]], "GET /", "a.b", {"lognormal": {"median": -1, "sigma": 9}},
]  # fmt: skip
EXTRA_KEYS: list[Any] = ["zz", 5, "type", None]


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _refused(text: str, parse: Any, *, source: str = "architecture.yaml") -> PipelineError:
    with pytest.raises(PipelineError) as raised:
        parse(load_yaml_text(text, source=source))
    assert raised.value.problems
    assert raised.value.source == source
    return raised.value


ARCHITECTURE_CASES = {
    "empty file": ("", "", "expected a mapping"),
    "a list at the top": ("- services\n- workload\n", "", "expected a mapping"),
    "a scalar at the top": ("42\n", "", "expected a mapping"),
    "services is a list": (
        _edit(ARCHITECTURE, "services:\n  inventory:\n", "services:\n- inventory:\n"),
        "services",
        "valid dictionary",
    ),
    "replicas is a list": (
        _edit(ARCHITECTURE, "replicas: 3", "replicas: [3]"),
        "services.inventory.replicas",
        "valid integer",
    ),
    "replicas is zero": (
        _edit(ARCHITECTURE, "replicas: 3", "replicas: 0"),
        "services.inventory.replicas",
        "greater than or equal to 1",
    ),
    "an unknown key": (
        _edit(ARCHITECTURE, "    replicas: 3", "    replica: 3"),
        "services.inventory.replica",
        "did you mean 'replicas'",
    ),
    "workload is missing": (
        ARCHITECTURE.split("\nworkload:")[0] + "\n",
        "workload",
        "required",
    ),
    "steps is a mapping": (
        _edit(ARCHITECTURE, "        steps:\n", "        steps: {read: redis}\n        stepz:\n"),
        "services.inventory.operations.checkout.steps",
        "valid list",
    ),
    "a step of two kinds": (
        _edit(ARCHITECTURE, "          - check: available >= qty", "          - check: available >= qty\n            call: payments"),
        "services.inventory.operations.checkout.steps[1]",
        "exactly one of",
    ),
    "an unknown resource": (
        _edit(ARCHITECTURE, "- read: redis", "- read: rediss"),
        "services.inventory.operations.checkout.steps[0].read",
        "did you mean 'redis'",
    ),
    "an unknown operation in the mix": (
        _edit(ARCHITECTURE, "inventory.checkout:", "inventory.chekout:"),
        "workload.mix.inventory.chekout",
        "unknown operation",
    ),
    "a NaN latency": (
        _edit(ARCHITECTURE, "median: 300us", "median: .nan"),
        "services.inventory.operations.checkout.steps[0].latency.lognormal.median",
        "finite",
    ),
    "a NaN sigma": (
        _edit(ARCHITECTURE, "sigma: 0.4", "sigma: .nan"),
        "services.inventory.operations.checkout.steps[0].latency.lognormal.sigma",
        "finite",
    ),
    "an infinite CPU": (
        _edit(ARCHITECTURE, "cpu: 250m", "cpu: .inf"),
        "services.inventory.cpu",
        "finite",
    ),
    "a negative step CPU": (
        _edit(ARCHITECTURE, "cpu: 60us", "cpu: -60us"),
        "services.inventory.operations.checkout.steps[0].cpu",
        "not a duration",
    ),
    "an infinite rate": (
        _edit(ARCHITECTURE, "burst: {requests: 250, window: 10ms}", "rate: {per_s: .inf}"),
        "workload.arrivals.rate.per_s",
        "finite",
    ),
    "a NaN mix weight": (
        _edit(ARCHITECTURE, "inventory.checkout: 0.8", "inventory.checkout: .nan"),
        "workload.mix.inventory.checkout",
        "finite",
    ),
    "a deeply nested value": (
        _edit(ARCHITECTURE, "    replicas: 3", "    replicas: " + "[" * 200 + "]" * 200),
        "",
        "nests deeper",
    ),
    "invalid YAML": (
        _edit(ARCHITECTURE, "    replicas: 3", "    replicas: [3"),
        "",
        "invalid YAML",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "path", "fragment"), ARCHITECTURE_CASES.values(), ids=list(ARCHITECTURE_CASES)
)
def test_a_malformed_architecture_is_refused_at_its_path(text: str, path: str, fragment: str):
    error = _load_error(text) if _raises_on_load(text) else _refused(text, parse_architecture)
    located = [p for p in error.problems if p.path == path or (not path and not p.path)]
    assert located, [str(p) for p in error.problems]
    assert any(fragment in p.message for p in located), [str(p) for p in located]
    if path:
        assert all(p.line is not None for p in located)


def _raises_on_load(text: str) -> bool:
    try:
        load_yaml_text(text, source="architecture.yaml")
    except PipelineError:
        return True
    return False


def _load_error(text: str) -> PipelineError:
    with pytest.raises(PipelineError) as raised:
        load_yaml_text(text, source="architecture.yaml")
    return raised.value


INCIDENT_CASES = {
    "a mapping, not a list": ("boundary: a -> b\n", "", "expected a list"),
    "an item that is a string": ("- inventory -> redis\n", "[0]", "valid dictionary"),
    "a missing severity": (
        "- {boundary: a -> b, age: 3d}\n",
        "[0].severity",
        "required",
    ),
    "an unknown key": (
        "- {boundary: a -> b, severity: 3, age: 3d, cuont: 2}\n",
        "[0].cuont",
        "did you mean 'count'",
    ),
    "a NaN age": ("- {boundary: a -> b, severity: 3, age: .nan}\n", "[0].age", "finite"),
    "an infinite age": ("- {boundary: a -> b, severity: 3, age: .inf}\n", "[0].age", "finite"),
    "a negative age": ("- {boundary: a -> b, severity: 3, age: -3d}\n", "[0].age", "duration"),
    "a list for the boundary": (
        "- {boundary: [a, b], severity: 3, age: 3d}\n",
        "[0].boundary",
        "valid string",
    ),
    "an unknown anomaly": (
        "incidents:\n  - {boundary: a -> b, severity: 3, age: 3d, anomaly: race}\n",
        "incidents[0].anomaly",
        "check-then-act",
    ),
    "incidents is a mapping": ("incidents: {a: 1}\n", "", "expected a list"),
}


@pytest.mark.parametrize(
    ("text", "path", "fragment"), INCIDENT_CASES.values(), ids=list(INCIDENT_CASES)
)
def test_malformed_incidents_are_refused_at_their_path(text: str, path: str, fragment: str):
    error = _refused(text, parse_incidents, source="incidents.yaml")
    located = [p for p in error.problems if p.path == path]
    assert located, [str(p) for p in error.problems]
    assert any(fragment in p.message for p in located), [str(p) for p in located]


def test_an_empty_incidents_file_holds_no_incident(tmp_path: Path):
    (tmp_path / "incidents.yaml").write_text("")
    assert load_incidents(tmp_path / "incidents.yaml") == ()


def test_the_loaders_refuse_what_is_not_a_regular_file(tmp_path: Path):
    with pytest.raises(PipelineError):
        load_architecture(tmp_path)
    with pytest.raises(PipelineError):
        load_incidents(tmp_path / "missing.yaml")


def mutate(data: Any, rng: random.Random) -> Any:
    """`data` with one to three nodes replaced, removed, or given an extra key."""
    return mutations.mutate(data, rng, ODD_VALUES, EXTRA_KEYS)


@pytest.mark.parametrize(
    ("text", "parse"),
    [(ARCHITECTURE, parse_architecture), (INCIDENTS, parse_incidents)],
    ids=["architecture", "incidents"],
)
def test_hundreds_of_mutations_end_in_a_result_or_a_located_error(text: str, parse: Any):
    base = yaml.safe_load(text)
    rng = random.Random(19)
    refused = 0
    for _ in range(400):
        document = YamlDocument(source="mutated.yaml", data=mutate(base, rng))
        try:
            parse(document)
        except PipelineError as error:
            refused += 1
            assert error.problems and all(p.message for p in error.problems)
    assert refused > 200  # the mutations do break the file
