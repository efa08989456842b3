"""Request patterns: WireMock's `request` object compiled into a cheap predicate.

A pattern checks, cheapest first: method, URL (one of `url`, `urlPath`,
`urlPattern`, `urlPathPattern`, `urlPathTemplate`), path parameters, query
parameters, headers, cookies, then body patterns. A multi-valued header or
parameter matches when any of its values does; a missing one is tested as
`None`, which only `absent: true` accepts. `explain` returns every check with
its verdict, for the "Request was not matched" report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heisen.errors import did_you_mean
from heisen.system.stub._http import HttpRequest
from heisen.system.stub._matchers import (
    Path,
    Report,
    ValueMatcher,
    compile_matcher,
)

URL_KEYS = ("url", "urlPath", "urlPattern", "urlPathPattern", "urlPathTemplate")
REQUEST_KEYS = (
    *URL_KEYS,
    "method",
    "pathParameters",
    "queryParameters",
    "headers",
    "cookies",
    "bodyPatterns",
)
UNSUPPORTED_REQUEST_KEYS = (
    "formParameters",
    "multipartPatterns",
    "basicAuthCredentials",
    "clientIp",
    "customMatcher",
    "host",
    "port",
    "scheme",
)
_TEMPLATE_VAR = re.compile(r"\{([A-Za-z_][\w.-]*)\}")

UrlTest = Callable[[HttpRequest], dict[str, str] | None]


@dataclass(frozen=True, slots=True)
class Check:
    label: str
    expected: str
    ok: bool


@dataclass(frozen=True, slots=True)
class RequestPattern:
    method: str | None  # None: ANY
    url_key: str | None
    url_value: str | None
    exact_path: str | None  # set when the URL pins one path, for the index
    url_test: UrlTest | None
    path_params: tuple[tuple[str, ValueMatcher], ...]
    query: tuple[tuple[str, ValueMatcher], ...]
    headers: tuple[tuple[str, ValueMatcher], ...]
    cookies: tuple[tuple[str, ValueMatcher], ...]
    body: tuple[ValueMatcher, ...]

    def matches(self, request: HttpRequest) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if self.url_test is not None:
            captured = self.url_test(request)
            if captured is None:
                return False
            for name, matcher in self.path_params:
                if not matcher.test(captured.get(name)):
                    return False
        if self.query:
            values = request.query
            for name, matcher in self.query:
                if not _any(matcher, values.get(name)):
                    return False
        headers = request.headers
        for name, matcher in self.headers:
            if not _any(matcher, headers.get(name)):
                return False
        if self.cookies:
            jar = request.cookies
            for name, matcher in self.cookies:
                if not _any(matcher, jar.get(name)):
                    return False
        if self.body:
            text = request.body_text()
            for matcher in self.body:
                if not matcher.test(text):
                    return False
        return True

    def explain(self, request: HttpRequest) -> list[Check]:
        checks = [
            Check(
                "method", self.method or "ANY", self.method is None or request.method == self.method
            )
        ]
        captured: dict[str, str] | None = {}
        if self.url_test is not None:
            captured = self.url_test(request)
            checks.append(Check(self.url_key or "url", self.url_value or "", captured is not None))
        for name, matcher in self.path_params:
            ok = captured is not None and matcher.test(captured.get(name))
            checks.append(Check(f"path parameter {name}", matcher.describe(), ok))
        for name, matcher in self.query:
            checks.append(
                Check(f"query {name}", matcher.describe(), _any(matcher, request.query.get(name)))
            )
        for name, matcher in self.headers:
            checks.append(
                Check(
                    f"header {name}", matcher.describe(), _any(matcher, request.headers.get(name))
                )
            )
        for name, matcher in self.cookies:
            checks.append(
                Check(
                    f"cookie {name}", matcher.describe(), _any(matcher, request.cookies.get(name))
                )
            )
        for matcher in self.body:
            checks.append(Check("body", matcher.describe(), matcher.test(request.body_text())))
        return checks


def _any(matcher: ValueMatcher, values: list[str] | None) -> bool:
    if not values:
        return matcher.test(None)
    return any(matcher.test(value) for value in values)


def compile_request(data: Any, path: Path, report: Report) -> RequestPattern | None:
    if not isinstance(data, dict):
        report(path, 'request is an object such as {"method": "GET", "url": "/path"}')
        return None
    failed = False

    def note(where: Path, message: str) -> None:
        nonlocal failed
        failed = True
        report(where, message)

    for key in data:
        if key in UNSUPPORTED_REQUEST_KEYS:
            note((*path, key), f"{key} is not supported by heisen's stub")
        elif key not in REQUEST_KEYS:
            note((*path, key), f"unknown request key {key!r}{did_you_mean(str(key), REQUEST_KEYS)}")
    method = data.get("method", "ANY")
    if not isinstance(method, str) or not method:
        note((*path, "method"), "method is a string such as GET or ANY")
        method = "ANY"
    url_keys = [key for key in URL_KEYS if key in data]
    if len(url_keys) > 1:
        note(path, f"use one of {', '.join(URL_KEYS)}, not {' and '.join(url_keys)}")
    url_key = url_keys[0] if url_keys else None
    url_value = data.get(url_key) if url_key else None
    url_test: UrlTest | None = None
    exact_path: str | None = None
    template_names: tuple[str, ...] = ()
    if url_key is not None:
        if not isinstance(url_value, str):
            note((*path, url_key), f"{url_key} is a string")
        else:
            built = _url_test(url_key, url_value, (*path, url_key), note)
            if built is not None:
                url_test, exact_path, template_names = built
    path_params = _named(data.get("pathParameters"), (*path, "pathParameters"), note, str)
    if path_params and url_key != "urlPathTemplate":
        note((*path, "pathParameters"), "pathParameters need a urlPathTemplate such as /items/{id}")
    for name, _ in path_params:
        if url_key == "urlPathTemplate" and name not in template_names:
            note(
                (*path, "pathParameters", name),
                f"{name!r} is not a variable of the urlPathTemplate",
            )
    query = _named(data.get("queryParameters"), (*path, "queryParameters"), note, str)
    headers = _named(data.get("headers"), (*path, "headers"), note, str.lower)
    cookies = _named(data.get("cookies"), (*path, "cookies"), note, str)
    body: list[ValueMatcher] = []
    patterns = data.get("bodyPatterns", [])
    if not isinstance(patterns, list):
        note((*path, "bodyPatterns"), "bodyPatterns is a list of match operators")
        patterns = []
    for i, spec in enumerate(patterns):
        matcher = compile_matcher(spec, (*path, "bodyPatterns", i), note)
        if matcher is not None:
            body.append(matcher)
    if failed:
        return None
    return RequestPattern(
        method=None if method.upper() == "ANY" else method.upper(),
        url_key=url_key,
        url_value=url_value if isinstance(url_value, str) else None,
        exact_path=exact_path,
        url_test=url_test,
        path_params=path_params,
        query=query,
        headers=headers,
        cookies=cookies,
        body=tuple(body),
    )


def _named(
    data: Any, path: Path, report: Report, fold: Callable[[str], str]
) -> tuple[tuple[str, ValueMatcher], ...]:
    if data is None:
        return ()
    if not isinstance(data, dict):
        report(path, "an object of name → match operator")
        return ()
    found = []
    for name, spec in data.items():
        if not isinstance(name, str):
            report((*path, name), f"a name is a string, not {name!r}")
            continue
        matcher = compile_matcher(spec, (*path, name), report)
        if matcher is not None:
            found.append((fold(name), matcher))
    return tuple(found)


_NO_CAPTURE: dict[str, str] = {}


def _url_test(
    key: str, value: str, path: Path, report: Report
) -> tuple[UrlTest, str | None, tuple[str, ...]] | None:
    if key == "url":
        return (lambda r: _NO_CAPTURE if r.target == value else None), value.partition("?")[0], ()
    if key == "urlPath":
        return (lambda r: _NO_CAPTURE if r.path == value else None), value, ()
    if key == "urlPathTemplate":
        names = tuple(_TEMPLATE_VAR.findall(value))
        if not names:
            return (lambda r: _NO_CAPTURE if r.path == value else None), value, ()
        clashing = [name for name in names if sum(_group(n) == _group(name) for n in names) > 1]
        if clashing:
            report(
                path,
                f"the variables {', '.join(dict.fromkeys(clashing))} appear twice (or differ only in punctuation)",
            )
            return None
        pieces = _TEMPLATE_VAR.split(value)
        regex = "".join(
            re.escape(piece) if i % 2 == 0 else f"(?P<{_group(piece)}>[^/]+)"
            for i, piece in enumerate(pieces)
        )
        compiled = re.compile(regex)
        groups = {_group(name): name for name in names}

        def template(r: HttpRequest) -> dict[str, str] | None:
            match = compiled.fullmatch(r.path)
            if match is None:
                return None
            return {groups[g]: v for g, v in match.groupdict().items()}

        return template, None, names
    try:
        pattern = re.compile(value)
    except re.error as exc:
        report(path, f"invalid regular expression: {exc}")
        return None
    if key == "urlPattern":
        return (lambda r: _NO_CAPTURE if pattern.fullmatch(r.target) else None), None, ()
    return (lambda r: _NO_CAPTURE if pattern.fullmatch(r.path) else None), None, ()


def _group(name: str) -> str:
    return "v_" + re.sub(r"\W", "_", name)
