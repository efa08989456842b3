"""From a pipeline's request templates to the `HttpRequest`s the engine sends.

Rendering is a pure function of (request name, index): `{{ faker.x }}` draws
from a Faker reseeded for each index, so a worker process renders exactly
what the parent would, and the parent can re-render any index afterwards to
build the history of requests it did not send itself. Both `RequestFactory`
and `StepRequests` pickle (the Faker and the cache of sent requests stay
behind), which is what `workers:` needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from heisen import _templates, seeds
from heisen.schema import LoadStep, RequestTemplate
from heisen.stress._request import HttpRequest


class TemplateContext(TypedDict):
    """What `{{ ... }}` in a request template may name besides `i` and `faker`."""

    trial: int
    seed: int
    run_id: str


@dataclass(frozen=True)
class RenderedRequest:
    """What was sent for request index i, kept to build the history afterwards."""

    name: str
    request: HttpRequest
    json_body: Any


class RequestFactory:
    """Renders `{{ i }}`, `{{ trial }}`, `{{ seed }}`, `{{ faker.x }}` into each request.

    `faker_names` names the Faker sub-seed (`seeds.faker(seed, *faker_names, i)`).
    `overrides` replaces a request's JSON body (fuzz sends its cases this way).
    """

    def __init__(
        self,
        templates: Mapping[str, RequestTemplate],
        *,
        trial: int,
        seed: int,
        run_id: str,
        faker_names: Sequence[str | int] = (),
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.templates = dict(templates)
        self.seed = seed
        self.context = TemplateContext(trial=trial, seed=seed, run_id=run_id)
        self.faker_names = tuple(faker_names)
        self.overrides = dict(overrides or {})
        self.sent: dict[int, RenderedRequest] = {}
        self._faker: Any = None
        self._with_faker = frozenset(
            name for name, t in self.templates.items() if "faker" in t.model_dump_json()
        )

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["sent"] = {}
        state["_faker"] = None
        return state

    def _faker_for(self, index: int) -> Any:
        if self._faker is None:
            self._faker = seeds.faker(self.seed, *self.faker_names)
        self._faker.seed_instance(seeds.derive(self.seed, "faker", *self.faker_names, index))
        return self._faker

    def render(self, name: str, index: int) -> HttpRequest:
        template = self.templates[name]
        faker = self._faker_for(index) if name in self._with_faker else None
        resolve = _templates.mapping_resolver({**self.context, "i": index}, faker)
        path = str(_templates.render_text(template.path, resolve))
        headers = {
            key: str(_templates.render_text(value, resolve))
            for key, value in template.headers.items()
        }
        json_body: Any = None
        if name in self.overrides:
            body = self.overrides[name]
            json_body = body if not isinstance(body, bytes) else None
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif template.json_body is not None:
            json_body = _templates.render(template.json_body, resolve)
            raw = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif template.body is not None:
            raw = str(_templates.render_text(template.body, resolve)).encode()
        else:
            raw = b""
        request = HttpRequest(template.method.upper(), path, tuple(headers.items()), raw)
        self.sent[index] = RenderedRequest(name, request, json_body)
        return request

    def for_step(self, step: LoadStep, default: str, offset: int = 0) -> StepRequests:
        """`make_request(i)` for a load step: its one request, or its mix spread by weight."""
        model = getattr(step, step.kind)
        names = model.request_names() or [default]
        sequence = tuple(names) if len(names) == 1 else tuple(weighted_sequence(model.mix))
        return StepRequests(self, sequence, offset)


@dataclass(frozen=True)
class StepRequests:
    """`make_request(i)` of one load step; picklable, so worker processes can render.

    Request i of the step is the scenario's request `offset + i` (names cycle
    through `sequence`), so indices stay unique over the steps of a trial.
    """

    factory: RequestFactory
    sequence: tuple[str, ...]
    offset: int = 0

    def name_of(self, index: int) -> str:
        return self.sequence[(self.offset + index) % len(self.sequence)]

    def __call__(self, index: int) -> HttpRequest:
        return self.factory.render(self.name_of(index), self.offset + index)

    def remember(self, indices: Sequence[int]) -> None:
        """Re-render (in this process) what a worker sent as these step indices."""
        for index in indices:
            if self.offset + index not in self.factory.sent:
                self(index)


def weighted_sequence(weights: Mapping[str, float], length: int = 100) -> list[str]:
    """Names spread evenly by weight over `length` slots (deterministic, interleaved)."""
    total = sum(weights.values())
    credit = dict.fromkeys(weights, 0.0)
    sequence = []
    for _ in range(length):
        for name, weight in weights.items():
            credit[name] += weight / total
        chosen = max(credit, key=lambda name: credit[name])
        credit[chosen] -= 1.0
        sequence.append(chosen)
    return sequence
