"""Loading WireMock mapping files (JSON or YAML) into validated `Mapping`s.

`load_mappings(root)` reads `root/mappings/**/*.json|yaml|yml`, each holding
one mapping or `{"mappings": [...]}`, with bodies from `root/__files/`.
Every file is checked in full before anything is served: the error lists
each problem with its file, JSON path and (for YAML) line, for example
`mappings/pay.json: mappings[2].request.urlPattern: invalid regular expression`.

A `proxyBaseUrl` obeys heisen's loopback rule (`heisen.system._addresses`):
its host must be loopback or listed in `allow_hosts`, else the mapping is
refused like any other invalid one, from a file or from the admin API.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from heisen._json import load_json_file
from heisen._serialised import JsonObject
from heisen._yaml import YamlDocument, load_yaml_file
from heisen.errors import PipelineError, Problem, did_you_mean
from heisen.system.stub._matchers import Path
from heisen.system.stub._matching import RequestPattern, compile_request
from heisen.system.stub._responses import ResponseSpec, parse_response

DEFAULT_PRIORITY = 5  # WireMock's default; lower numbers win
MAPPING_KEYS = (
    "id",
    "uuid",
    "name",
    "priority",
    "request",
    "response",
    "scenarioName",
    "requiredScenarioState",
    "newScenarioState",
    "persistent",
    "metadata",
    "insertionIndex",
    "postServeActions",
    "serveEventListeners",
)
SUFFIXES = (".json", ".yaml", ".yml")
PROXY_REFUSED = "proxyBaseUrl goes where heisen may not send traffic: "


@dataclass(frozen=True, slots=True)
class Mapping:
    id: str
    name: str | None
    priority: int
    request: RequestPattern
    response: ResponseSpec
    scenario: str | None = None
    required_state: str | None = None
    new_state: str | None = None
    raw: JsonObject = field(default_factory=dict, compare=False)
    source: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name else self.id

    def to_json(self) -> JsonObject:
        data = {k: v for k, v in self.raw.items() if k not in ("id", "uuid")}
        return {"id": self.id, "uuid": self.id, **data}


def load_mappings(root: FsPath, allow_hosts: Collection[str] = ()) -> list[Mapping]:
    """Every mapping under `root/mappings`, in file-name order; PipelineError if any is wrong.

    A `proxyBaseUrl` may reach loopback and the hosts in `allow_hosts` only.
    """
    folder = root / "mappings"
    if not root.is_dir():
        raise PipelineError(str(root), [Problem("", "the stub root is not a directory")])
    files_dir = root / "__files"
    paths = (
        sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        if folder.is_dir()
        else []
    )
    mappings: list[Mapping] = []
    failures: list[PipelineError] = []
    for path in paths:
        try:
            mappings += parse_document(_read(path), files_dir, allow_hosts)
        except PipelineError as error:
            failures.append(error)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        problems = [
            Problem(
                f"{FsPath(f.source).relative_to(folder)}: {p.path}", p.message, p.line, p.column
            )
            for f in failures
            for p in f.problems
        ]
        raise PipelineError(f"{folder} ({len(failures)} files)", problems)
    return mappings


def _read(path: FsPath) -> YamlDocument:
    if path.suffix == ".json":
        return load_json_file(path)
    return load_yaml_file(path)


def parse_document(
    document: YamlDocument, files_dir: FsPath | None, allow_hosts: Collection[str] = ()
) -> list[Mapping]:
    """The mappings of one document (single mapping or `{"mappings": [...]}`)."""
    data = document.data
    problems: list[Problem] = []

    def report(path: Path, message: str) -> None:
        problems.append(document.problem(path, message))

    found: list[Mapping] = []
    if isinstance(data, dict) and "mappings" in data:
        items = data["mappings"]
        if not isinstance(items, list):
            report(("mappings",), "mappings is a list of stub mappings")
            items = []
        for i, item in enumerate(items):
            mapping = parse_mapping(
                item, ("mappings", i), report, files_dir, document.source, allow_hosts
            )
            if mapping is not None:
                found.append(mapping)
    elif isinstance(data, dict):
        mapping = parse_mapping(data, (), report, files_dir, document.source, allow_hosts)
        if mapping is not None:
            found.append(mapping)
    else:
        report((), 'a mapping file holds one mapping object or {"mappings": [...]}')
    if problems:
        raise PipelineError(document.source, problems)
    return found


def parse_mapping(
    data: Any,
    path: Path,
    report: Any,
    files_dir: FsPath | None,
    source: str = "",
    allow_hosts: Collection[str] = (),
) -> Mapping | None:
    if not isinstance(data, dict):
        report(path, "a stub mapping is an object with request and response")
        return None
    failed = False

    def note(where: Path, message: str) -> None:
        nonlocal failed
        failed = True
        report(where, message)

    for key in data:
        if key not in MAPPING_KEYS:
            note(
                (*path, str(key)),
                f"unknown mapping key {key!r}{did_you_mean(str(key), MAPPING_KEYS)}",
            )
    stub_id = data.get("id") or data.get("uuid") or str(uuid.uuid4())
    if not isinstance(stub_id, str):
        note((*path, "id"), "id is a UUID string")
        stub_id = str(uuid.uuid4())
    name = data.get("name")
    priority = data.get("priority", DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int):
        note((*path, "priority"), f"priority is an integer (lower wins), not {priority!r}")
        priority = DEFAULT_PRIORITY
    scenario_fields = {
        k: data.get(k) for k in ("scenarioName", "requiredScenarioState", "newScenarioState")
    }
    for key, value in scenario_fields.items():
        if value is not None and not isinstance(value, str):
            note((*path, key), f"{key} is a string")
    if data.get("scenarioName") is None and (
        data.get("requiredScenarioState") or data.get("newScenarioState")
    ):
        note(path, "requiredScenarioState and newScenarioState need a scenarioName")
    if "request" not in data:
        note(path, "a stub mapping needs a request")
    request = compile_request(data.get("request"), (*path, "request"), note)
    response = parse_response(data.get("response"), (*path, "response"), note, files_dir, stub_id)
    if response is not None and response.proxy is not None:
        from heisen.system._addresses import loopback_problems

        for message in loopback_problems(response.proxy.base_url, allow_hosts):
            note((*path, "response", "proxyBaseUrl"), PROXY_REFUSED + message)
    if failed or request is None or response is None:
        return None
    return Mapping(
        id=stub_id,
        name=name if isinstance(name, str) else None,
        priority=priority,
        request=request,
        response=response,
        scenario=data.get("scenarioName"),
        required_state=data.get("requiredScenarioState"),
        new_state=data.get("newScenarioState"),
        raw={**data, "id": stub_id},
        source=source,
    )


def mapping_from_json(
    data: Any,
    files_dir: FsPath | None,
    source: str = "admin request",
    allow_hosts: Collection[str] = (),
) -> Mapping:
    """One mapping sent to the admin API; PipelineError listing every problem."""
    document = YamlDocument(source=source, data=data)
    problems: list[Problem] = []
    mapping = parse_mapping(
        data,
        (),
        lambda p, m: problems.append(document.problem(p, m)),
        files_dir,
        source,
        allow_hosts,
    )
    if problems or mapping is None:
        raise PipelineError(source, problems or [Problem("", "not a stub mapping")])
    return mapping
