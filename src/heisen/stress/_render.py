"""From a pipeline's request templates to the `HttpRequest`s the engine sends."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from heisen import _templates
from heisen._schema._system import LoadStep, RequestTemplate
from heisen.stress._request import HttpRequest


@dataclass(frozen=True)
class RenderedRequest:
    """What was sent for request index i, kept to build the history afterwards."""

    name: str
    request: HttpRequest
    json_body: Any


class RequestFactory:
    """Renders `{{ i }}`, `{{ trial }}`, `{{ seed }}`, `{{ faker.x }}` into each request.

    `overrides` replaces a request's JSON body (fuzz sends its cases this way).
    """

    def __init__(
        self,
        templates: Mapping[str, RequestTemplate],
        *,
        trial: int,
        seed: int,
        run_id: str,
        faker: Any,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.templates = templates
        self.context = {"trial": trial, "seed": seed, "run_id": run_id}
        self.faker = faker
        self.overrides = overrides or {}
        self.sent: dict[int, RenderedRequest] = {}

    def render(self, name: str, index: int) -> HttpRequest:
        template = self.templates[name]
        resolve = _templates.mapping_resolver({**self.context, "i": index}, self.faker)
        path = str(_templates.render_text(template.path, resolve))
        headers = {key: str(_templates.render_text(value, resolve)) for key, value in template.headers.items()}
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

    def for_step(self, step: LoadStep, default: str) -> Callable[[int], HttpRequest]:
        """`make_request(i)` for a load step: its one request, or its mix spread by weight."""
        model = getattr(step, step.kind)
        names = model.request_names() or [default]
        if len(names) == 1:
            name = names[0]
            return lambda index: self.render(name, index)
        sequence = weighted_sequence(model.mix)
        return lambda index: self.render(sequence[index % len(sequence)], index)


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
