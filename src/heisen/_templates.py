"""`{{ ... }}` templates in pipeline values: names looked up, never evaluated.

A template is text with placeholders such as `{{ deps.postgres.dsn }}`,
`{{ i }}` or `{{ faker.user_name }}`. A placeholder is a dotted name; its
first part must be one the context offers. `faker.<provider>` calls that
Faker provider with no arguments. No part of a name may start with `_`
(`{{ i.__class__ }}` is refused at validate and at render). A value that is a single placeholder keeps
the type of what it names (`qty: "{{ i }}"` renders to an int).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from heisen._yaml import clipped

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
_MAX_KNOWN_SHOWN = 12
FAKER_LOCALE = "en_US"


class TemplateError(ValueError):
    """A placeholder that is malformed or names nothing the context offers."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    text: str
    parts: tuple[str, ...]


def placeholders(text: str) -> list[Placeholder]:
    """Every placeholder in `text`, raising TemplateError for a malformed one."""
    if text.count("{{") != text.count("}}"):
        raise TemplateError(f"unbalanced braces in {clipped(text)}: every '{{{{' needs its '}}}}'")
    found = []
    for match in _PLACEHOLDER.finditer(text):
        inner = match.group(1).strip()
        if not _NAME.match(inner):
            raise TemplateError(
                f"{{{{ {inner} }}}} is not a name: write a dotted name such as {{{{ deps.postgres.dsn }}}}"
            )
        parts = tuple(inner.split("."))
        if any(part.startswith("_") for part in parts):
            raise TemplateError(
                f"{{{{ {inner} }}}}: names starting with '_' are not allowed in templates"
            )
        found.append(Placeholder(match.group(0), parts))
    return found


class FakerProviders(Mapping[str, Any]):
    """The Faker providers a template may name: `{{ faker.user_name }}`.

    Found on the provider classes of Faker's `en_US` locale (what runs use),
    by their signatures only: nothing is called or looked up on a Faker
    proxy. A provider qualifies when it takes no required argument and does
    not return bytes. Loaded on first use, so a pipeline without Faker never
    imports it.
    """

    def _names(self) -> frozenset[str]:
        return faker_provider_names()

    def __getitem__(self, name: str) -> Any:
        if name in self._names():
            return {}
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names()))

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()


@functools.cache
def faker_provider_names() -> frozenset[str]:
    """Names of Faker's `en_US` providers callable without arguments (see FakerProviders)."""
    from faker import Faker

    generator = Faker(FAKER_LOCALE)._factories[0]  # the generator holds the provider instances
    names = set()
    for provider in generator.providers:
        for name, attribute in inspect.getmembers_static(type(provider)):
            if name.startswith("_") or not inspect.isfunction(attribute):
                continue
            signature = inspect.signature(attribute)
            parameters = list(signature.parameters.values())[1:]
            if "bytes" in str(signature.return_annotation):
                continue
            if all(
                p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                for p in parameters
            ):
                names.add(name)
    return frozenset(names)


def _known(level: Mapping[str, Any], wanted: str) -> str:
    """What to tell a user who wrote `wanted` where `level` offers its keys."""
    names = sorted(level)
    if len(names) <= _MAX_KNOWN_SHOWN:
        return f" (known: {', '.join(names)})" if names else ""
    close = difflib.get_close_matches(wanted, names, n=3)
    if close:
        return f"; did you mean {' or '.join(repr(name) for name in close)}?"
    return f" (one of {len(names)} names, such as {', '.join(names[:5])})"


def check_names(text: str, roots: Mapping[str, Any]) -> list[str]:
    """Problems with the placeholders of `text` given the names `roots` offers.

    `roots` maps a first name to either None (anything below it is fine) or a
    mapping of the names allowed below it (nested the same way); an empty
    mapping is a value with nothing below it (`{{ i.x }}` is refused).
    """
    try:
        found = placeholders(text)
    except TemplateError as exc:
        return [str(exc)]
    problems = []
    for placeholder in found:
        level: Any = roots
        for depth, part in enumerate(placeholder.parts):
            if level is None:
                break
            if not isinstance(level, Mapping) or part not in level:
                known = _known(level, part) if isinstance(level, Mapping) else ""
                prefix = ".".join(placeholder.parts[:depth]) or "the template"
                problems.append(f"{placeholder.text}: {prefix} has no {part!r}{known}")
                break
            level = level[part]
        else:
            if isinstance(level, Mapping) and len(level):
                names = sorted(level)
                shown = ", ".join(names[:_MAX_KNOWN_SHOWN])
                more = f", ... ({len(names)} in all)" if len(names) > _MAX_KNOWN_SHOWN else ""
                problems.append(f"{placeholder.text} names a group; pick one of: {shown}{more}")
    return problems


Resolver = Callable[[tuple[str, ...]], Any]


def render(value: Any, resolve: Resolver) -> Any:
    """Render every string inside `value` (recursively through lists and mappings)."""
    if isinstance(value, str):
        return render_text(value, resolve)
    if isinstance(value, list):
        return [render(item, resolve) for item in value]
    if isinstance(value, dict):
        return {key: render(item, resolve) for key, item in value.items()}
    return value


def render_text(text: str, resolve: Resolver) -> Any:
    if "{{" not in text:
        return text
    found = placeholders(text)
    if len(found) == 1 and found[0].text == text.strip():
        return resolve(found[0].parts)
    for placeholder in found:
        text = text.replace(placeholder.text, str(resolve(placeholder.parts)), 1)
    return text


def mapping_resolver(context: Mapping[str, Any], faker: Any = None) -> Resolver:
    """Look names up in nested mappings; `faker.x` calls the Faker provider `x`."""

    def resolve(parts: tuple[str, ...]) -> Any:
        if parts[0] == "faker" and faker is not None and len(parts) == 2:
            return getattr(faker, parts[1])()
        value: Any = context
        for part in parts:
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                raise TemplateError(f"{{{{ {'.'.join(parts)} }}}} names nothing here")
        return value

    return resolve
