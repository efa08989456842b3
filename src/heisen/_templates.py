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

Grammar (`parse` is its recursive-descent parser):

    placeholder := sum ( "|" "default" "(" STRING ")" )?
    sum         := product ( ("+" | "-") product )*
    product     := unary ( ("*" | "//" | "%") unary )*
    unary       := "-" unary | atom
    atom        := INT | NAME | "choice" "(" "[" literal ("," literal)* ","? "]" ")" | "(" sum ")"
    literal     := STRING | "-"? INT
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from heisen import seeds
from heisen._yaml import clipped

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<int>\d+)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>//|\*\*|[-+*%|(),\[\]])
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")
_MAX_KNOWN_SHOWN = 12
MAX_PLACEHOLDER = 200
"""Characters inside one `{{ ... }}`."""
_MAX_NESTING = 8
FAKER_LOCALE = "en_US"
BUILTINS = ("env", "choice([...])")
"""What every template may use besides the names its context offers (messages list them)."""


class TemplateError(ValueError):
    """A placeholder that is malformed or names nothing the context offers."""


@dataclass(frozen=True, slots=True)
class Name:
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int


@dataclass(frozen=True, slots=True)
class Arithmetic:
    operator: str
    left: Expression
    right: Expression


@dataclass(frozen=True, slots=True)
class Choice:
    options: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Default:
    name: Name
    fallback: str


Expression = Name | Literal | Arithmetic | Choice | Default


@dataclass(frozen=True, slots=True)
class Placeholder:
    text: str
    expression: Expression


def placeholders(text: str) -> list[Placeholder]:
    """Every placeholder in `text`, raising TemplateError for a malformed one."""
    if text.count("{{") != text.count("}}"):
        raise TemplateError(f"unbalanced braces in {clipped(text)}: every '{{{{' needs its '}}}}'")
    return [Placeholder(m.group(0), parse(m.group(1).strip())) for m in _PLACEHOLDER.finditer(text)]


def parse(inner: str) -> Expression:
    """The expression inside one `{{ ... }}`, or TemplateError saying what is wrong."""
    shown = f"{{{{ {inner} }}}}" if len(inner) <= 60 else f"{{{{ {inner[:55]}... }}}}"
    if len(inner) > MAX_PLACEHOLDER:
        raise TemplateError(f"{shown}: a placeholder is at most {MAX_PLACEHOLDER} characters")
    if not inner:
        raise TemplateError("{{ }} is empty: write a name such as {{ deps.postgres.dsn }}")
    return _Parser(inner, shown).placeholder()


class _Parser:
    def __init__(self, inner: str, shown: str) -> None:
        self.shown = shown
        self.tokens: list[tuple[str, str]] = []
        position = 0
        inner = inner.rstrip()
        while position < len(inner):
            match = _TOKEN.match(inner, position)
            if match is None or match.end() == position:
                rest = inner[position:].strip()
                if rest.startswith("/"):
                    raise self.error("'/' is not an operator here: '//' divides integers")
                raise self.error(f"cannot read {rest[:20]!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.at = 0
        self.depth = 0

    def error(self, message: str) -> TemplateError:
        return TemplateError(
            f"{self.shown}: {message}; a placeholder is a name ({{{{ deps.postgres.dsn }}}}), "
            '{{ env.NAME | default("x") }}, integer arithmetic ({{ i % 5 }}) or '
            '{{ choice(["a", "b"]) }}'
        )

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            wanted = (
                repr(value) if value is not None else f"a {'string' if kind == 'str' else kind}"
            )
            found = repr(token[1]) if token else "the end"
            raise self.error(f"expected {wanted}, found {found}")
        self.at += 1
        return token[1]

    def accept(self, value: str) -> bool:
        if self.peek() == ("op", value):
            self.at += 1
            return True
        return False

    def placeholder(self) -> Expression:
        expression = self.sum()
        if self.accept("|"):
            if not isinstance(expression, Name) or expression.parts[0] != "env":
                raise self.error("| default(...) follows an environment variable (env.NAME) only")
            self.take("name", "default")
            self.take("op", "(")
            fallback = _unquote(self.take("str"))
            self.take("op", ")")
            expression = Default(expression, fallback)
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return expression

    def sum(self) -> Expression:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise self.error(f"nested deeper than {_MAX_NESTING} parentheses")
        expression = self.product()
        while (token := self.peek()) in (("op", "+"), ("op", "-")):
            self.at += 1
            expression = Arithmetic(token[1], expression, self.product())
        self.depth -= 1
        return expression

    def product(self) -> Expression:
        expression = self.unary()
        while (token := self.peek()) in (("op", "*"), ("op", "//"), ("op", "%")):
            self.at += 1
            expression = Arithmetic(token[1], expression, self.unary())
        return expression

    def unary(self) -> Expression:
        if self.accept("-"):
            return Arithmetic("-", Literal(0), self.unary())
        return self.atom()

    def atom(self) -> Expression:
        token = self.peek()
        if token is None:
            raise self.error("expected a name or a number, found the end")
        kind, value = token
        self.at += 1
        if kind == "int":
            return Literal(int(value))
        if kind == "name" and value == "choice" and self.peek() == ("op", "("):
            return self.choice()
        if kind == "name":
            parts = tuple(value.split("."))
            if any(part.startswith("_") for part in parts):
                raise TemplateError(
                    f"{self.shown}: names starting with '_' are not allowed in templates"
                )
            if parts[0] == "env" and len(parts) != 2:
                raise self.error("an environment variable is written env.NAME")
            return Name(parts)
        if (kind, value) == ("op", "("):
            inner = self.sum()
            self.take("op", ")")
            return inner
        if kind == "str":
            raise self.error("a string stands alone only inside choice([...]) or default(...)")
        raise self.error(f"unexpected {value!r}")

    def choice(self) -> Choice:
        self.take("op", "(")
        self.take("op", "[")
        options: list[str | int] = []
        while not self.accept("]"):
            token = self.peek()
            if token is not None and token[0] == "str":
                self.at += 1
                options.append(_unquote(token[1]))
            else:
                negative = self.accept("-")
                number = int(self.take("int"))
                options.append(-number if negative else number)
            if not self.accept(","):
                self.take("op", "]")
                break
        self.take("op", ")")
        if not options:
            raise self.error("choice([...]) needs at least one option")
        return Choice(tuple(options))


def _unquote(token: str) -> str:
    return _ESCAPE.sub(r"\1", token[1:-1])


def names_in(expression: Expression) -> Iterator[Name]:
    """The names an expression reads (an env.NAME under a default included)."""
    if isinstance(expression, Name):
        yield expression
    elif isinstance(expression, Default):
        yield expression.name
    elif isinstance(expression, Arithmetic):
        yield from names_in(expression.left)
        yield from names_in(expression.right)


def _choices_in(expression: Expression) -> Iterator[Choice]:
    if isinstance(expression, Choice):
        yield expression
    elif isinstance(expression, Arithmetic):
        yield from _choices_in(expression.left)
        yield from _choices_in(expression.right)


def _zero_divisors(expression: Expression) -> Iterator[Arithmetic]:
    if isinstance(expression, Arithmetic):
        if expression.operator in ("//", "%") and expression.right == Literal(0):
            yield expression
        yield from _zero_divisors(expression.left)
        yield from _zero_divisors(expression.right)


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
        if any(True for _ in _choices_in(expression)) and not {"i", "seed"} <= set(roots):
            problems.append(
                f"{placeholder.text}: choice([...]) draws one option per request (from the run "
                "seed and the request index i), so it works in scenario requests only"
            )
        if any(True for _ in _zero_divisors(expression)):
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
    left = _integer(evaluate(expression.left, resolve), _shown(expression.left))
    right = _integer(evaluate(expression.right, resolve), _shown(expression.right))
    if expression.operator in ("//", "%") and right == 0:
        raise TemplateError(f"{_shown(expression)} divides by zero")
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


def _shown(expression: Expression) -> str:
    if isinstance(expression, Name):
        return ".".join(expression.parts)
    if isinstance(expression, Literal):
        return repr(expression.value)
    if isinstance(expression, Arithmetic):
        return f"({_shown(expression.left)} {expression.operator} {_shown(expression.right)})"
    return "choice([...])" if isinstance(expression, Choice) else "default(...)"


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
