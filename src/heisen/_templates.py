"""`{{ ... }}` templates in pipeline values: parsed by a small grammar, never evaluated as Python.

A template is text with placeholders. What a placeholder may hold:

- a dotted name the context offers: `{{ deps.postgres.dsn }}`, `{{ i }}`,
  `{{ faker.user_name }}` (calls that Faker provider with no arguments);
- an environment variable of the heisen process: `{{ env.MODE }}`, or with a
  fallback, `{{ env.MODE | default("buggy") }}` (a variable that is unset and
  has no default is an error at validate and at render);
- integer arithmetic over names and integers: `+ - * // %` and parentheses
  (`{{ i % 5 }}`, `{{ (i + 1) * 2 }}`); operands must be integers;
- `choice([...])` over literal strings and integers: one of them, drawn from
  the run seed and the request index (`seed`, `i`), so a replay sends the same.

No part of a name may start with `_` (`{{ i.__class__ }}` is refused at
validate and at render), nothing is looked up as an attribute, and a
placeholder is at most `MAX_PLACEHOLDER` characters. A value that is a single
placeholder keeps the type of what it gives (`qty: "{{ i + 1 }}"` renders to
an int).

The grammar and its parser are in `_template_grammar`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from heisen import seeds
from heisen._template_grammar import (
    MAX_PLACEHOLDER,
    Choice,
    Default,
    Expression,
    Literal,
    Name,
    Placeholder,
    TemplateError,
    choices_in,
    names_in,
    parse,
    placeholders,
    shown,
    zero_divisors,
)
from heisen._yaml import clipped

__all__ = [
    "BUILTINS",
    "MAX_PLACEHOLDER",
    "FakerProviders",
    "Placeholder",
    "TemplateError",
    "check_names",
    "evaluate",
    "faker_provider_names",
    "mapping_resolver",
    "names_in",
    "parse",
    "placeholders",
    "render",
    "render_text",
]

_MAX_KNOWN_SHOWN = 12
FAKER_LOCALE = "en_US"
BUILTINS = ("env", "choice([...])")
"""What every template may use besides the names its context offers (messages list them)."""


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


def _known(level: Mapping[str, Any], wanted: str, extra: tuple[str, ...] = ()) -> str:
    """What to tell a user who wrote `wanted` where `level` offers its keys (and `extra`)."""
    names = sorted(level) + list(extra)
    if len(names) <= _MAX_KNOWN_SHOWN:
        return f" (known: {', '.join(names)})" if names else ""
    close = difflib.get_close_matches(wanted, names, n=3)
    if close:
        return f"; did you mean {' or '.join(repr(name) for name in close)}?"
    return f" (one of {len(names)} names, such as {', '.join(names[:5])})"


def check_names(
    text: str, roots: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> list[str]:
    """Problems with the placeholders of `text` given the names `roots` offers.

    `roots` maps a first name to either None (anything below it is fine) or a
    mapping of the names allowed below it (nested the same way); an empty
    mapping is a value with nothing below it (`{{ i.x }}` is refused).
    `env.NAME` is checked against `environ` (default: this process's
    environment); `choice([...])` needs `i` and `seed` among the roots.
    """
    try:
        found = placeholders(text)
    except TemplateError as exc:
        return [str(exc)]
    environ = os.environ if environ is None else environ
    problems = []
    for placeholder in found:
        expression = placeholder.expression
        defaulted = expression.name if isinstance(expression, Default) else None
        for name in names_in(expression):
            if name.parts[0] == "env":
                variable = name.parts[1]
                if name is not defaulted and variable not in environ:
                    problems.append(
                        f"{placeholder.text}: the environment variable {variable} is not set; "
                        f"set it, or give a default: "
                        f'{{{{ env.{variable} | default("...") }}}}'
                    )
                continue
            problems += _check_name(placeholder.text, name.parts, roots)
        if any(True for _ in choices_in(expression)) and not {"i", "seed"} <= set(roots):
            problems.append(
                f"{placeholder.text}: choice([...]) draws one option per request (from the run "
                "seed and the request index i), so it works in scenario requests only"
            )
        if any(True for _ in zero_divisors(expression)):
            problems.append(f"{placeholder.text} divides by zero")
    return problems


def _check_name(text: str, parts: tuple[str, ...], roots: Mapping[str, Any]) -> list[str]:
    level: Any = roots
    for depth, part in enumerate(parts):
        if level is None:
            return []
        if not isinstance(level, Mapping) or part not in level:
            extra = (BUILTINS if "i" in roots else BUILTINS[:1]) if depth == 0 else ()
            known = _known(level, part, extra) if isinstance(level, Mapping) else ""
            prefix = ".".join(parts[:depth]) or "the template"
            if "-" in part and part.split("-")[0] in level:
                known = (
                    f" ('-' is part of a name; subtract with spaces: {part.replace('-', ' - ')})"
                )
            return [f"{text}: {prefix} has no {part!r}{known}"]
        level = level[part]
    if isinstance(level, Mapping) and len(level):
        names = sorted(level)
        shown = ", ".join(names[:_MAX_KNOWN_SHOWN])
        more = f", ... ({len(names)} in all)" if len(names) > _MAX_KNOWN_SHOWN else ""
        return [f"{text} names a group; pick one of: {shown}{more}"]
    return []


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
        return evaluate(found[0].expression, resolve)
    for placeholder in found:
        text = text.replace(placeholder.text, str(evaluate(placeholder.expression, resolve)), 1)
    return text


def evaluate(expression: Expression, resolve: Resolver) -> Any:
    """The value of a parsed placeholder; names go to `resolve`, `env.NAME` to os.environ."""
    if isinstance(expression, Literal):
        return expression.value
    if isinstance(expression, Name):
        if expression.parts[0] == "env":
            variable = expression.parts[1]
            if variable not in os.environ:
                raise TemplateError(
                    f"{{{{ env.{variable} }}}}: the environment variable {variable} is not set"
                )
            return os.environ[variable]
        return resolve(expression.parts)
    if isinstance(expression, Default):
        return os.environ.get(expression.name.parts[1], expression.fallback)
    if isinstance(expression, Choice):
        draw = seeds.rng(
            _integer(resolve(("seed",)), "seed"),
            "choice",
            _integer(resolve(("i",)), "i"),
            json.dumps(expression.options),
        )
        return draw.choice(expression.options)
    left = _integer(evaluate(expression.left, resolve), shown(expression.left))
    right = _integer(evaluate(expression.right, resolve), shown(expression.right))
    if expression.operator in ("//", "%") and right == 0:
        raise TemplateError(f"{shown(expression)} divides by zero")
    return _OPERATIONS[expression.operator](left, right)


_OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
}


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(
            f"{what} is {clipped(value)}, not an integer: template arithmetic is on integers only"
        )
    return value


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
