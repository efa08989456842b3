"""Malformed stub mappings: always a PipelineError naming the file and the bad field, never a traceback."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from test_stub_support import TREE

import mutations
from heisen._yaml import YamlDocument
from heisen.errors import PipelineError
from heisen.system.stub import load_mappings
from heisen.system.stub._mappings import parse_document

ODD_VALUES: list[Any] = [
    None, True, 0, -1, 2**70, 1e400, float("nan"), float("inf"), "", "x", "[a-", "((", [], {},
    [1], {"a": 1}, {"equalTo": 5}, {"matches": "(("}, {"type": "lognormal", "median": -1},
]  # fmt: skip
EXTRA_KEYS: list[Any] = ["zz", 5, "matches", "and", None]


def _root(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "mappings").mkdir(exist_ok=True)
    (tmp_path / "mappings" / name).write_text(text)
    return tmp_path


def _mapping(request: dict[str, Any] | None = None, **response: Any) -> str:
    return json.dumps({"request": request or {"url": "/x"}, "response": response})


def _distribution(**fields: Any) -> str:
    return _mapping(delayDistribution=fields)


CASES = {
    "empty file": ("", "", "invalid JSON"),
    "a list, not a mapping": ("[1, 2]", "", "one mapping object"),
    "a string, not a mapping": ('"hello"', "", "one mapping object"),
    "mappings is a mapping": ('{"mappings": {"a": 1}}', "mappings", "list"),
    "a mapping that is a number": ('{"mappings": [5]}', "mappings[0]", "request and response"),
    "request is a list": ('{"request": ["GET"]}', "request", "request is an object"),
    "response is a string": ('{"request": {}, "response": "ok"}', "response", "response is an object"),
    "an unknown key": ('{"request": {}, "reponse": {}}', "reponse", "did you mean 'response'"),
    "an unknown request key": (_mapping({"urll": "/x"}), "request.urll", "did you mean 'url'"),
    "a method that is a number": (_mapping({"method": 5}), "request.method", "string"),
    "two URL keys": (_mapping({"url": "/x", "urlPath": "/x"}), "request", "not url and urlPath"),
    "a bad urlPattern": (_mapping({"urlPattern": "/x/[a-"}), "request.urlPattern", "regular expression"),
    "a bad urlPathPattern": (_mapping({"urlPathPattern": "(("}), "request.urlPathPattern", "regular expression"),
    "a bad header regex": (
        _mapping({"url": "/x", "headers": {"X-Id": {"matches": "(("}}}),
        "request.headers.X-Id.matches",
        "regular expression",
    ),
    "a bad body regex": (
        _mapping({"url": "/x", "bodyPatterns": [{"doesNotMatch": "[z-a]"}]}),
        "request.bodyPatterns[0].doesNotMatch",
        "regular expression",
    ),
    "an equalToJson that is not JSON": (
        _mapping({"url": "/x", "bodyPatterns": [{"equalToJson": '{"amount": '}]}),
        "request.bodyPatterns[0].equalToJson",
        "invalid JSON",
    ),
    "an equalToJson nested too deeply": (
        _mapping({"url": "/x", "bodyPatterns": [{"equalToJson": "[" * 5000 + "]" * 5000}]}),
        "request.bodyPatterns[0].equalToJson",
        "nests deeper",
    ),
    "a bad JSONPath": (
        _mapping({"url": "/x", "bodyPatterns": [{"matchesJsonPath": "$[[["}]}),
        "request.bodyPatterns[0].matchesJsonPath",
        "unclosed",
    ),
    "two operators in one matcher": (
        _mapping({"url": "/x", "headers": {"A": {"equalTo": "a", "contains": "b"}}}),
        "request.headers.A",
        "exactly one match operator",
    ),
    "and/or nested too deeply": (
        _mapping({"url": "/x", "bodyPatterns": [json.loads('{"and": [' * 30 + '{"equalTo": "x"}' + "]}" * 30)]}),
        "request.bodyPatterns[0]" + ".and[0]" * 17,
        "nest deeper than 16",
    ),
    "a template naming a variable twice": (
        _mapping({"urlPathTemplate": "/a/{id}/{id}"}),
        "request.urlPathTemplate",
        "appear twice",
    ),
    "template variables that differ in punctuation only": (
        _mapping({"urlPathTemplate": "/a/{a-b}/{a_b}"}),
        "request.urlPathTemplate",
        "appear twice",
    ),
    "a status that is a string": (_mapping(status="teapot"), "response.status", "HTTP status code"),
    "an unknown fault": (_mapping(fault="EXPLODE"), "response.fault", "unknown fault"),
    "a jsonBody holding NaN": ('{"request": {}, "response": {"jsonBody": {"a": NaN}}}', "response.jsonBody", "NaN"),
    "a body file outside the root": (_mapping(bodyFileName="../../etc/passwd"), "response.bodyFileName", "outside"),
    "a negative fixed delay": (_mapping(fixedDelayMilliseconds=-5), "response.fixedDelayMilliseconds", "from 0"),
    "an infinite fixed delay": (
        '{"request": {}, "response": {"fixedDelayMilliseconds": Infinity}}',
        "response.fixedDelayMilliseconds",
        "one hour",
    ),
    "a NaN fixed delay": (
        '{"request": {}, "response": {"fixedDelayMilliseconds": NaN}}',
        "response.fixedDelayMilliseconds",
        "one hour",
    ),
    "a NaN median": (
        '{"request": {}, "response": {"delayDistribution": {"type": "lognormal", "median": NaN, "sigma": 0.1}}}',
        "response.delayDistribution.median",
        "between 0 and",
    ),
    "a negative median": (_distribution(type="lognormal", median=-5, sigma=0.1), "response.delayDistribution.median", "between 0 and"),
    "a negative sigma": (_distribution(type="lognormal", median=5, sigma=-0.1), "response.delayDistribution.sigma", "between 0 and 10"),
    "a NaN sigma": (
        '{"request": {}, "response": {"delayDistribution": {"type": "lognormal", "median": 5, "sigma": NaN}}}',
        "response.delayDistribution.sigma",
        "between 0 and 10",
    ),
    "a sigma that overflows": (_distribution(type="lognormal", median=5, sigma=1e308), "response.delayDistribution.sigma", "between 0 and 10"),
    "a median of a year": (_distribution(type="lognormal", median=3.2e10, sigma=0.1), "response.delayDistribution.median", "between 0 and"),
    "a sigma that is a string": (_distribution(type="lognormal", median=5, sigma="wide"), "response.delayDistribution.sigma", "must be a number"),
    "a missing sigma": (_distribution(type="lognormal", median=5), "response.delayDistribution.sigma", "required"),
    "a maxValue below the median": (_distribution(type="lognormal", median=5, sigma=0.1, maxValue=1), "response.delayDistribution.maxValue", "≥ median"),
    "an upper bound below the lower": (_distribution(type="uniform", lower=50, upper=5), "response.delayDistribution.upper", "≥ lower"),
    "an unknown distribution": (_distribution(type="pareto"), "response.delayDistribution.type", "unknown delay distribution"),
    "a distribution that is a list": (_mapping(delayDistribution=[1]), "response.delayDistribution", "an object"),
    "a fractional number of chunks": (
        _mapping(chunkedDribbleDelay={"numberOfChunks": 2.5, "totalDuration": 10}),
        "response.chunkedDribbleDelay.numberOfChunks",
        "whole number",
    ),
    "a NaN number of chunks": (
        '{"request": {}, "response": {"chunkedDribbleDelay": {"numberOfChunks": NaN, "totalDuration": 10}}}',
        "response.chunkedDribbleDelay.numberOfChunks",
        "between 1 and",
    ),
    "a header value that is a mapping": (_mapping(headers={"X": {"a": 1}}), "response.headers.X", "one-line string"),
    "deep nesting": ('{"request": ' + "[" * 100 + "]" * 100 + "}", "", "nests deeper"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "path", "fragment"), CASES.values(), ids=list(CASES))
def test_a_malformed_json_mapping_is_refused_naming_file_and_field(
    tmp_path: Path, text: str, path: str, fragment: str
):
    root = _root(tmp_path, "bad.json", text)
    with pytest.raises(PipelineError) as raised:
        load_mappings(root)
    assert raised.value.source == str(root / "mappings" / "bad.json")
    located = [p for p in raised.value.problems if p.path == path or (not path and not p.path)]
    assert located, [str(p) for p in raised.value.problems]
    assert any(fragment in p.message for p in located), [str(p) for p in located]


YAML_CASES = {
    "a header name that is a number": (
        "request: {url: /x}\nresponse:\n  headers:\n    5: x\n",
        "response.headers[5]",
        4,
    ),
    "a request header name that is a number": (
        "request:\n  url: /x\n  headers:\n    7: {equalTo: x}\n",
        "request.headers[7]",
        4,
    ),
    "a key that is a number": ("request: {url: /x}\n5: x\n", "5", 2),
    "a bad regex": ("request:\n  urlPattern: '(('\n", "request.urlPattern", 2),
    "a NaN median": (
        "request: {url: /x}\nresponse:\n  delayDistribution: {type: lognormal, median: .nan, sigma: 1}\n",
        "response.delayDistribution.median",
        3,
    ),
    "a duplicate key": ("request: {url: /x}\nresponse: {}\nresponse: {}\n", "response", 3),
}


@pytest.mark.parametrize(("text", "path", "line"), YAML_CASES.values(), ids=list(YAML_CASES))
def test_a_malformed_yaml_mapping_is_refused_at_its_line(
    tmp_path: Path, text: str, path: str, line: int
):
    root = _root(tmp_path, "bad.yaml", text)
    with pytest.raises(PipelineError) as raised:
        load_mappings(root)
    located = [p for p in raised.value.problems if p.path == path]
    assert located, [str(p) for p in raised.value.problems]
    assert located[0].line == line


def test_problems_in_several_files_name_each_file(tmp_path: Path):
    _root(tmp_path, "a.json", _mapping({"urlPattern": "(("}))
    _root(tmp_path, "b.json", "[1]")
    with pytest.raises(PipelineError) as raised:
        load_mappings(tmp_path)
    shown = [str(p) for p in raised.value.problems]
    assert any(s.startswith("a.json: request.urlPattern") for s in shown), shown
    assert any(s.startswith("b.json") for s in shown), shown


def mutate(data: Any, rng: random.Random) -> Any:
    """`data` with one to three nodes replaced, removed, or given an extra key."""
    return mutations.mutate(data, rng, ODD_VALUES, EXTRA_KEYS)


def test_hundreds_of_mutations_of_the_tree_end_in_mappings_or_a_located_error():
    documents = [json.loads(p.read_text()) for p in sorted(TREE.rglob("*.json"))]
    assert documents
    rng = random.Random(19)
    refused = 0
    for index in range(600):
        data = mutate(documents[index % len(documents)], rng)
        try:
            parse_document(YamlDocument(source="mutated.json", data=data), TREE / "__files")
        except PipelineError as error:
            refused += 1
            assert error.problems and all(p.message for p in error.problems)
    assert refused > 300  # the mutations do break the mappings
