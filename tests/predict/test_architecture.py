from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from heisen._yaml import load_yaml_text
from heisen.errors import PipelineError
from heisen.predict._architecture import load_incidents, parse_incidents
from heisen.predict._model import Anomaly, StepKind

BROKEN = textwrap.dedent(
    """\
    services:
      inventory:
        replicas: three
        cpu: 250m
        operations:
          checkout:
            endpoint: POST /events/{event}/checkout
            body: {qty: 1}
            steps:
              - read: redis
                key: "inventory:{event}"
                as: available
                latncy: 2ms
              - check: stock >= qty
              - call: paymnts
              - write: rediss
                key: "inventory:{event}"
                op: decrement
                by: qty
                latency: {lognormal: {median: 3 lightyears, sigma: 0.5}}
    resources:
      redis: {kind: cache}
      payments: {kind: service}
    workload:
      arrivals: {burst: {requests: 100, window: 10ms}}
      mix: {inventory.checkout: 1}
      keys: {event: {uniform: 1}}
    """
)


@pytest.fixture
def problems_of(build):
    def problems(text: str) -> list[str]:
        with pytest.raises(PipelineError) as caught:
            build(text)
        return [str(problem) for problem in caught.value.problems]

    return problems


def test_ticketing_example_compiles(ticketing) -> None:
    checkout = ticketing.operations["inventory.checkout"]
    assert [step.kind for step in checkout.steps] == [
        StepKind.READ,
        StepKind.CHECK,
        StepKind.CALL,
        StepKind.WRITE,
        StepKind.WRITE,
    ]
    assert checkout.steps[1].check is not None and checkout.steps[1].check.amount == 1
    assert checkout.endpoint is not None and checkout.endpoint.path == "/events/{event}/checkout"
    assert ticketing.services["inventory"].cpu == pytest.approx(0.25)
    assert ticketing.workload.capacity == {"inventory:{event}": 100}
    assert checkout.steps[2].latency.kind == "lognormal" and checkout.steps[
        2
    ].latency.a == pytest.approx(0.004)


def test_schema_errors_carry_path_line_and_hint(problems_of) -> None:
    found = problems_of(BROKEN)
    joined = "\n".join(found)
    assert "services.inventory.replicas (line 3:" in joined
    assert "unknown key 'latncy'; did you mean 'latency'?" in joined
    assert "services.inventory.operations.checkout.steps[0].latncy (line 13:" in joined
    assert "3 lightyears" in joined and "line 20" in joined


def test_semantic_errors_all_at_once(problems_of) -> None:
    text = (
        BROKEN.replace("replicas: three", "replicas: 3")
        .replace("latncy", "latency")
        .replace("3 lightyears", "3ms")
    )
    found = problems_of(text)
    joined = "\n".join(found)
    assert len(found) == 3, joined
    assert "steps[1].check (line 14:" in joined and "'stock' was not read" in joined
    assert "unknown service 'paymnts'; did you mean 'payments'?" in joined
    assert "unknown resource 'rediss'; did you mean 'redis'?" in joined


def test_mix_capacity_and_placeholders_are_checked(problems_of) -> None:
    text = (
        BROKEN.replace("replicas: three", "replicas: 3")
        .replace("latncy", "latency")
        .replace("3 lightyears", "3ms")
    )
    text = (
        text.replace("stock >=", "available >=")
        .replace("paymnts", "payments")
        .replace("rediss", "redis")
    )
    text = text.replace(
        "mix: {inventory.checkout: 1}",
        'mix: {inventory.chekout: 1}\n  capacity: {"inventory:{evnt}": 5}',
    )
    text = text.replace(
        'key: "inventory:{event}"\n            as', 'key: "inventory:{slot}"\n            as'
    )
    joined = "\n".join(problems_of(text))
    assert (
        "workload.mix.inventory.chekout" in joined and "did you mean 'inventory.checkout'" in joined
    )
    assert "workload.capacity.inventory:{evnt}" in joined
    assert "placeholder {slot} has no popularity under workload.keys" in joined


def test_locks_must_be_released(problems_of) -> None:
    text = (
        BROKEN.replace("replicas: three", "replicas: 3")
        .replace("latncy", "latency")
        .replace("3 lightyears", "3ms")
    )
    text = (
        text.replace("stock >=", "available >=")
        .replace("paymnts", "payments")
        .replace("rediss", "redis")
    )
    text = text.replace(
        "          - read: redis\n",
        '          - lock: redis\n            key: "lock:{event}"\n            timeout: 1s\n          - read: redis\n',
        1,
    )
    joined = "\n".join(problems_of(text))
    assert "never unlocked" in joined


def test_incidents_load_and_validate(example_dir: Path) -> None:
    incidents = load_incidents(example_dir / "incidents.yaml")
    assert incidents[0].boundary == "inventory → redis"
    assert incidents[0].anomaly is Anomaly.CHECK_THEN_ACT
    assert incidents[0].age_s == pytest.approx(14 * 86400)
    text = "- boundary: a -> b\n  severity: 9\n  age: soon\n  cuont: 2\n"
    with pytest.raises(PipelineError) as caught:
        parse_incidents(load_yaml_text(text, source="incidents.yaml"))
    joined = str(caught.value)
    assert "[0].severity (line 2:" in joined
    assert "[0].age (line 3:" in joined
    assert "unknown key 'cuont'; did you mean 'count'?" in joined
    ok = parse_incidents(
        load_yaml_text("incidents:\n  - {boundary: a->b, severity: 2, age: 2w}\n", source="i.yaml")
    )
    assert ok[0].boundary == "a → b" and ok[0].age_s == pytest.approx(14 * 86400)
