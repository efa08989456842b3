"""`{{ ... }}` templates in pipeline values: names looked up, never evaluated.

A template is text with placeholders such as `{{ deps.postgres.dsn }}`,
`{{ i }}` or `{{ faker.user_name }}`. A placeholder is a dotted name; its
first part must be one the context offers. `faker.<provider>` calls that
Faker provider with no arguments. A value that is a single placeholder keeps
the type of what it names (`qty: "{{ i }}"` renders to an int).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")


class TemplateError(ValueError):
    """A placeholder that is malformed or names nothing the context offers."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    text: str
    parts: tuple[str, ...]


def placeholders(text: str) -> list[Placeholder]:
    """Every placeholder in `text`, raising TemplateError for a malformed one."""
    if text.count("{{") != text.count("}}"):
        raise TemplateError(f"unbalanced braces in {text!r}: every '{{{{' needs its '}}}}'")
    found = []
    for match in _PLACEHOLDER.finditer(text):
        inner = match.group(1).strip()
        if not _NAME.match(inner):
            raise TemplateError(
                f"{{{{ {inner} }}}} is not a name: write a dotted name such as {{{{ deps.postgres.dsn }}}}"
            )
        found.append(Placeholder(match.group(0), tuple(inner.split("."))))
    return found


def check_names(text: str, roots: Mapping[str, Any]) -> list[str]:
    """Problems with the placeholders of `text` given the names `roots` offers.

    `roots` maps a first name to either None (anything below it is fine) or a
    mapping of the names allowed below it (nested the same way).
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
                known = ", ".join(sorted(level)) if isinstance(level, Mapping) else ""
                prefix = ".".join(placeholder.parts[:depth]) or "the template"
                problems.append(
                    f"{placeholder.text}: {prefix} has no {part!r}"
                    + (f" (known: {known})" if known else "")
                )
                break
            level = level[part]
        else:
            if isinstance(level, Mapping) and level:
                problems.append(
                    f"{placeholder.text} names a group; pick one of: {', '.join(sorted(level))}"
                )
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
