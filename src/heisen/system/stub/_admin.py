"""The subset of WireMock's admin API (`/__admin/...`) that its clients use.

Every route answers JSON. Invalid input answers 422 with WireMock's error
shape, `{"errors": [{"title": ..., "source": {"pointer": ...}}]}`, one entry
per problem; a mapping whose `proxyBaseUrl` breaks the loopback rule is such
input. The server answers admin requests from loopback peers only (403
otherwise), whatever address it listens on. Routes run on the server's event loop, between requests, so an
admin change never interleaves with a request's match-and-transition.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from heisen._serialised import JsonObject
from heisen.errors import PipelineError, Problem
from heisen.system.stub._core import Settings, StubCore
from heisen.system.stub._delays import parse_distribution
from heisen.system.stub._http import HttpRequest
from heisen.system.stub._mappings import mapping_from_json
from heisen.system.stub._matching import compile_request

PREFIX = "/__admin"
Reply = tuple[int, Any]
_STARTED = time.time()


class _Invalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("invalid input")
        self.problems = problems


def handle(core: StubCore, request: HttpRequest) -> Reply:
    """Answer one admin request as (status, JSON-able body)."""
    parts = [p for p in request.path[len(PREFIX) :].split("/") if p]
    method = request.method
    try:
        return _route(core, method, parts, request)
    except _Invalid as error:
        return 422, _errors(error.problems)
    except PipelineError as error:
        return 422, _errors(error.problems)


def _route(core: StubCore, method: str, parts: list[str], request: HttpRequest) -> Reply:
    head = parts[0] if parts else ""
    rest = parts[1:]
    table: dict[tuple[str, str, int], Callable[[], Reply]] = {
        ("GET", "health", 0): lambda: (200, _health(core)),
        ("GET", "mappings", 0): lambda: (200, _list_mappings(core)),
        ("POST", "mappings", 0): lambda: _create(core, request),
        ("DELETE", "mappings", 0): lambda: _delete_all(core),
        ("GET", "requests", 0): lambda: (200, _requests(core, request)),
        ("DELETE", "requests", 0): lambda: _clear_journal(core),
        ("GET", "scenarios", 0): lambda: (200, {"scenarios": core.scenarios.to_json()}),
        ("POST", "reset", 0): lambda: _reset_all(core),
        ("GET", "settings", 0): lambda: (200, {"settings": _settings_json(core.settings)}),
        ("POST", "settings", 0): lambda: _settings(core, request),
        ("PUT", "settings", 0): lambda: _settings(core, request),
    }
    action = table.get((method, head, len(rest)))
    if action is not None:
        return action()
    if head == "mappings" and len(rest) == 1:
        if rest[0] == "reset" and method == "POST":
            core.reset_mappings()
            return 200, {}
        return _one_mapping(core, method, rest[0], request)
    if head == "requests" and rest == ["count"] and method == "POST":
        return _count(core, request)
    if head == "requests" and rest == ["reset"] and method == "POST":
        return _clear_journal(core)
    if head == "scenarios" and rest == ["reset"] and method == "POST":
        core.scenarios.reset()
        return 200, {}
    return 404, {"errors": [{"title": f"no admin route {method} {request.path}"}]}


def _json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Invalid([Problem("", f"the body is not JSON: {exc}")]) from exc


def _errors(problems: list[Problem]) -> JsonObject:
    return {
        "errors": [
            {"title": p.message, "source": {"pointer": "/" + p.path.replace(".", "/")}}
            for p in problems
        ]
    }


def _health(core: StubCore) -> JsonObject:
    return {
        "status": "healthy",
        "message": "heisen stub is ok",
        "mappings": len(core.registry),
        "uptimeInSeconds": int(time.time() - _STARTED),
    }


def _list_mappings(core: StubCore) -> JsonObject:
    mappings = [m.to_json() for m in core.registry.all()]
    return {"mappings": mappings, "meta": {"total": len(mappings)}}


def _create(core: StubCore, request: HttpRequest) -> Reply:
    mapping = mapping_from_json(_json_body(request), core.files_dir, allow_hosts=core.allow_hosts)
    if core.registry.get(mapping.id) is not None:
        core.registry.remove(mapping.id)
    core.registry.add(mapping)
    return 201, mapping.to_json()


def _one_mapping(core: StubCore, method: str, stub_id: str, request: HttpRequest) -> Reply:
    missing = (404, {"errors": [{"title": f"no stub mapping with id {stub_id}"}]})
    if method == "GET":
        found = core.registry.get(stub_id)
        return (200, found.to_json()) if found else missing
    if method == "DELETE":
        return (200, {}) if core.registry.remove(stub_id) else missing
    if method == "PUT":
        data = _json_body(request)
        if not isinstance(data, dict):
            raise _Invalid([Problem("", "a stub mapping is an object")])
        mapping = mapping_from_json(
            {**data, "id": stub_id}, core.files_dir, allow_hosts=core.allow_hosts
        )
        return (200, mapping.to_json()) if core.registry.replace(mapping) else missing
    return 405, {"errors": [{"title": f"{method} is not allowed on a mapping"}]}


def _delete_all(core: StubCore) -> Reply:
    core.registry.clear()
    return 200, {}


def _clear_journal(core: StubCore) -> Reply:
    core.journal.clear()
    return 200, {}


def _reset_all(core: StubCore) -> Reply:
    core.reset_mappings()
    core.journal.clear()
    core.settings = Settings()
    return 200, {}


def _requests(core: StubCore, request: HttpRequest) -> JsonObject:
    limit_text = request.query.get("limit", [""])[0]
    limit = int(limit_text) if limit_text.isdigit() else None
    entries: list[JsonObject] = []
    for entry in core.journal.newest_first():
        if limit is not None and len(entries) >= limit:
            break
        entries.append(entry.to_json())
    return {
        "requests": entries,
        "meta": {"total": len(core.journal)},
        "requestJournalDisabled": not core.journal.enabled,
    }


def _count(core: StubCore, request: HttpRequest) -> Reply:
    if not core.journal.enabled:
        return 409, {"errors": [{"title": "the request journal is disabled (--journal-limit 0)"}]}
    problems: list[Problem] = []
    pattern = compile_request(
        _json_body(request), (), lambda p, m: problems.append(Problem(_path(p), m))
    )
    if pattern is None:
        raise _Invalid(problems)
    count = sum(1 for entry in core.journal.newest_first() if pattern.matches(entry.request))
    return 200, {"count": count}


def _settings(core: StubCore, request: HttpRequest) -> Reply:
    data = _json_body(request)
    if isinstance(data, dict) and isinstance(data.get("settings"), dict):
        data = data["settings"]
    if not isinstance(data, dict):
        raise _Invalid([Problem("", "settings is an object {fixedDelay, delayDistribution}")])
    problems: list[Problem] = []
    fixed = data.get("fixedDelay")
    if fixed is not None and (
        isinstance(fixed, bool) or not isinstance(fixed, (int, float)) or fixed < 0
    ):
        problems.append(Problem("fixedDelay", "fixedDelay is a number of milliseconds ≥ 0"))
    distribution = None
    if data.get("delayDistribution") is not None:
        distribution = parse_distribution(
            data["delayDistribution"],
            ("delayDistribution",),
            lambda p, m: problems.append(Problem(_path(p), m)),
        )
    if problems:
        raise _Invalid(problems)
    core.settings = Settings(float(fixed) if fixed is not None else None, distribution)
    return 200, {"settings": _settings_json(core.settings)}


def _settings_json(settings: Settings) -> JsonObject:
    data: JsonObject = {}
    if settings.fixed_delay_ms is not None:
        data["fixedDelay"] = settings.fixed_delay_ms
    if settings.distribution is not None:
        data["delayDistribution"] = settings.distribution.to_json()
    return data


def _path(path: tuple[str | int, ...]) -> str:
    from heisen._yaml import format_path

    return format_path(path)
