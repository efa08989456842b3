"""The safe expression language of invariants' ``expect:``.

An expression is parsed once into a Python AST (``ast.parse(mode="eval")``),
checked against a strict allowlist of node types, and evaluated by walking
the tree. Nothing is ever compiled or passed to ``eval``.

Allowed: literals (numbers, strings, ``true``/``false``/``null`` and
``True``/``False``/``None``), list and tuple displays, names, field access
(``a.b``, ``a["k"]``, ``a[0]``), arithmetic (``+ - * / // %``, unary ``-``
and ``+``), chained comparisons (``== != < <= > >= in not in is is not``),
``and``/``or``/``not``, conditional expressions (``x if c else y``) and
calls of a few functions (:data:`FUNCTIONS`).

Not allowed: ``**`` and bit operators (a way to build huge numbers),
attributes starting with ``_``, calls of anything else, keyword arguments,
lambdas, comprehensions, slices, f-strings, walrus, starred arguments.
Repetition of a string or a list by an integer is capped at
:data:`MAX_SEQUENCE` items.
"""

from __future__ import annotations

import ast
import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from heisen.errors import UsageError

__all__ = ["FUNCTIONS", "MAX_SEQUENCE", "Expression", "ExpressionError", "parse_expression"]

MAX_SEQUENCE = 1_000_000
MAX_LENGTH = 2_000

FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "int": int,
    "float": float,
    "str": str,
    "round": round,
    "all": all,
    "any": any,
}

_LITERAL_NAMES: Mapping[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}

_BINARY: Mapping[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_COMPARE: Mapping[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_SYMBOLS: Mapping[type[ast.AST], str] = {
    ast.Pow: "'**' (power)",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.BitOr: "'|'",
    ast.BitAnd: "'&'",
    ast.BitXor: "'^'",
    ast.MatMult: "'@'",
    ast.Invert: "'~'",
    ast.Lambda: "lambda",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Slice: "a slice",
    ast.JoinedStr: "an f-string",
    ast.NamedExpr: "':=' (assignment)",
    ast.Starred: "'*' unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.Dict: "a dict display",
    ast.Set: "a set display",
}


class ExpressionError(UsageError):
    """An expression that does not parse, uses something not allowed, or fails to evaluate."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.message = message
        self.column = column
        where = f" (column {column})" if column is not None else ""
        super().__init__(f"{message}{where}")


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed ``expect:`` expression; evaluate it against a probe's variables."""

    text: str
    names: frozenset[str]
    _tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate against ``variables``; raise :class:`ExpressionError` on a missing name or field."""
        return _evaluate(self._tree, variables)

    def __str__(self) -> str:
        return self.text


def parse_expression(text: str) -> Expression:
    """Parse ``text``; raise :class:`ExpressionError` naming the first construct not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    source = " ".join(text.strip().splitlines())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"invalid syntax: {exc.msg}", exc.offset) from None
    names: set[str] = set()
    for node in ast.walk(tree.body):
        _check_node(node, names)
    return Expression(text=text, names=frozenset(names), _tree=tree.body)


_ALLOWED_NODES = (
    ast.Constant,
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Call,
    ast.IfExp,
    ast.List,
    ast.Tuple,
    ast.Load,
    ast.And,
    ast.Or,
    ast.Not,
    ast.USub,
    ast.UAdd,
    *_BINARY,
    *_COMPARE,
)


def _column(node: ast.AST) -> int | None:
    offset = getattr(node, "col_offset", None)
    return None if offset is None else offset + 1


def _check_node(node: ast.AST, names: set[str]) -> None:
    if isinstance(node, ast.BinOp | ast.UnaryOp) and not isinstance(node.op, _ALLOWED_NODES):
        what = _SYMBOLS.get(type(node.op), f"'{type(node.op).__name__}'")
        raise ExpressionError(f"{what} is not allowed in an expression", _column(node))
    if not isinstance(node, _ALLOWED_NODES):
        what = _SYMBOLS.get(type(node), f"'{type(node).__name__}'")
        raise ExpressionError(f"{what} is not allowed in an expression", _column(node))
    if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | None):
        raise ExpressionError(f"the literal {node.value!r} is not allowed", _column(node))
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ExpressionError(
            f"the field {node.attr!r} is not allowed: names starting with '_' are private",
            _column(node),
        )
    if isinstance(node, ast.Name) and node.id not in _LITERAL_NAMES:
        if node.id.startswith("__"):
            raise ExpressionError(f"the name {node.id!r} is not allowed", _column(node))
        if node.id not in FUNCTIONS:
            names.add(node.id)
    if isinstance(node, ast.Call):
        _check_call(node)


def _check_call(node: ast.Call) -> None:
    func = node.func
    if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
        name = func.id if isinstance(func, ast.Name) else ast.unparse(func)
        allowed = ", ".join(sorted(FUNCTIONS))
        raise ExpressionError(
            f"calling {name!r} is not allowed (allowed functions: {allowed})", _column(node)
        )
    if node.keywords:
        raise ExpressionError(
            f"keyword arguments are not allowed in {func.id}()", _column(node.keywords[0].value)
        )


def _evaluate(node: ast.expr, variables: Mapping[str, Any]) -> Any:
    try:
        return _eval(node, variables)
    except ExpressionError:
        raise
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise ExpressionError(
            f"cannot evaluate {ast.unparse(node)!r}: {exc}", _column(node)
        ) from None


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _lookup(node, env)
    if isinstance(node, ast.Attribute):
        return _field(_eval(node.value, env), node.attr, node)
    if isinstance(node, ast.Subscript):
        return _index(_eval(node.value, env), _eval(node.slice, env), node)
    if isinstance(node, ast.BoolOp):
        result: Any = None
        for operand in node.values:
            result = _eval(operand, env)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        return _binary(node, _eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, env) else node.orelse, env)
    if isinstance(node, ast.List):
        return [_eval(item, env) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_eval(item, env) for item in node.elts)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(arg, env) for arg in node.args]
        return FUNCTIONS[node.func.id](*args)
    raise ExpressionError(f"'{type(node).__name__}' is not allowed", _column(node))


def _lookup(node: ast.Name, env: Mapping[str, Any]) -> Any:
    if node.id in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id]
    if node.id in env:
        return env[node.id]
    if node.id in FUNCTIONS:
        raise ExpressionError(f"{node.id!r} is a function: call it", _column(node))
    known = ", ".join(sorted(env)) or "none"
    raise ExpressionError(f"unknown name {node.id!r} (the probe gave: {known})", _column(node))


def _field(value: Any, name: str, node: ast.AST) -> Any:
    if isinstance(value, Mapping):
        if name in value:
            return value[name]
        known = ", ".join(sorted(map(str, value))) or "none"
        raise ExpressionError(f"no field {name!r} (fields: {known})", _column(node))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if name in {f.name for f in dataclasses.fields(value)}:
            return getattr(value, name)
    elif isinstance(value, tuple) and name in getattr(value, "_fields", ()):
        return getattr(value, name)
    raise ExpressionError(
        f"no field {name!r} on a value of type {type(value).__name__}", _column(node)
    )


def _index(value: Any, key: Any, node: ast.AST) -> Any:
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        raise ExpressionError(f"no key {key!r}", _column(node))
    if isinstance(value, Sequence) and not isinstance(key, bool) and isinstance(key, int):
        if -len(value) <= key < len(value):
            return value[key]
        raise ExpressionError(f"index {key} is out of range (length {len(value)})", _column(node))
    raise ExpressionError(
        f"cannot index a value of type {type(value).__name__} with {key!r}", _column(node)
    )


def _binary(node: ast.BinOp, left: Any, right: Any) -> Any:
    if isinstance(node.op, ast.Mult):
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(count, int):
                if len(seq) * count > MAX_SEQUENCE:
                    raise ExpressionError(
                        f"the result would have more than {MAX_SEQUENCE} items", _column(node)
                    )
    if isinstance(node.op, ast.Add) and isinstance(left, str | list | tuple):
        if isinstance(right, str | list | tuple) and len(left) + len(right) > MAX_SEQUENCE:
            raise ExpressionError(
                f"the result would have more than {MAX_SEQUENCE} items", _column(node)
            )
    return _BINARY[type(node.op)](left, right)
