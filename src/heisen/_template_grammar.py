"""The grammar of a `{{ ... }}` placeholder and its parser: text in, a small tree out.

Nothing here evaluates anything (`_templates.evaluate` does, over this tree).

Grammar (`parse` is its recursive-descent parser):

    placeholder := sum ( "|" "default" "(" STRING ")" )?
    sum         := product ( ("+" | "-") product )*
    product     := unary ( ("*" | "//" | "%") unary )*
    unary       := "-" unary | atom
    atom        := INT | NAME | "choice" "(" "[" literal ("," literal)* ","? "]" ")" | "(" sum ")"
    literal     := STRING | "-"? INT
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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
MAX_PLACEHOLDER = 200
"""Characters inside one `{{ ... }}`."""
_MAX_NESTING = 8


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


def choices_in(expression: Expression) -> Iterator[Choice]:
    if isinstance(expression, Choice):
        yield expression
    elif isinstance(expression, Arithmetic):
        yield from choices_in(expression.left)
        yield from choices_in(expression.right)


def zero_divisors(expression: Expression) -> Iterator[Arithmetic]:
    if isinstance(expression, Arithmetic):
        if expression.operator in ("//", "%") and expression.right == Literal(0):
            yield expression
        yield from zero_divisors(expression.left)
        yield from zero_divisors(expression.right)


def shown(expression: Expression) -> str:
    if isinstance(expression, Name):
        return ".".join(expression.parts)
    if isinstance(expression, Literal):
        return repr(expression.value)
    if isinstance(expression, Arithmetic):
        return f"({shown(expression.left)} {expression.operator} {shown(expression.right)})"
    return "choice([...])" if isinstance(expression, Choice) else "default(...)"
