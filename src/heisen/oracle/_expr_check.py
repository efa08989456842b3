"""Parse an expression and check it before it ever runs.

:func:`analyse` parses the text with :func:`ast.parse` (``mode="eval"``),
refuses what the budget can see statically (text length, nesting depth,
repetition of a literal beyond :data:`MAX_SIZE`, ``int()`` of a literal string
longer than :data:`MAX_DIGITS`), then walks the tree once,
with the comprehension scopes, to:

* refuse every node type, operator, literal, attribute, call and
  comprehension target outside the allowlist, naming it and its column;
* collect the free names: the names read from the variables, not bound by an
  enclosing comprehension, not a function and not a literal name;
* mark the evidence chains: the outermost ``name(.field | [constant])*``
  access chains rooted at a free name, with their text path, so the evaluator
  records their values.

The walk is recursive, but only after :func:`_depth` (iterative) has bounded
the tree's depth by :data:`MAX_DEPTH`, so it cannot hit ``RecursionError``.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from heisen.oracle._expr_budget import MAX_DEPTH, MAX_DIGITS, MAX_LENGTH, MAX_SIZE, budget_error
from heisen.oracle._expr_errors import ErrorKind, ExpressionError, column_of
from heisen.oracle._expr_functions import FUNCTIONS, ITERABLE_FUNCTIONS, METHODS

__all__ = ["BINARY_OPERATORS", "LITERAL_NAMES", "Analysis", "analyse"]

LITERAL_NAMES: Mapping[str, object] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}

BINARY_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)

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
    ast.Slice: "a slice",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "':=' (assignment)",
    ast.Starred: "'*' unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SKIPPED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
_Static = tuple[int, bool] | None  # a value's size when the literal text shows it, and if a string


@dataclass(frozen=True, slots=True)
class Analysis:
    """What :func:`analyse` learnt: the tree, its free names and its evidence chains."""

    tree: ast.expr
    names: frozenset[str]
    chains: Mapping[ast.AST, str]


def analyse(text: str) -> Analysis:
    """Parse and check ``text``; raise :class:`ExpressionError` for the first thing refused."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise budget_error(
            "length", f"the expression has {len(text):,} characters (at most {MAX_LENGTH:,})", None
        )
    source = " ".join(text.strip().splitlines())
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and the like: parse on, quietly
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        if "too many nested" in str(exc.msg):
            raise _too_deep(exc.offset) from None
        raise ExpressionError(f"invalid syntax: {exc.msg}", exc.offset) from None
    except (MemoryError, RecursionError):
        raise _too_deep(None) from None
    except ValueError as exc:  # a NUL character, on Python 3.11
        raise ExpressionError(f"invalid syntax: {exc}") from None
    deep = _depth(tree.body)
    if deep is not None:
        raise _too_deep(column_of(deep))
    checker = _Checker()
    checker.visit(tree.body, frozenset())
    return Analysis(tree.body, frozenset(checker.names), checker.chains)


def _too_deep(column: int | None) -> ExpressionError:
    return ExpressionError(
        f"depth budget exceeded: the expression is nested more than {MAX_DEPTH} deep",
        column,
        ErrorKind.BUDGET,
    )


def _depth(root: ast.expr) -> ast.AST | None:
    """The first node deeper than :data:`MAX_DEPTH`, found without recursion; else None."""
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node
        if isinstance(node, _COMPREHENSIONS):
            stack += [(gen, depth + 1 + i) for i, gen in enumerate(node.generators)]
            last = depth + len(node.generators)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            stack += [(part, last + 1) for part in parts]
            continue
        stack += [
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, _SKIPPED)
        ]
    return None


def _refuse(what: str, node: ast.AST) -> ExpressionError:
    return ExpressionError(f"{what} is not allowed in an expression", column_of(node))


def _const_key(node: ast.expr) -> str | int | None:
    """The constant key of a subscript (``"k"``, ``0``, ``-1``), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int):
        return None if isinstance(node.value, bool) else node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    return None


def _const_count(node: ast.expr) -> int | None:
    key = _const_key(node)
    return key if isinstance(key, int) else None


class _Checker:
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.chains: dict[ast.AST, str] = {}

    def path(self, node: ast.expr, bound: frozenset[str]) -> str | None:
        """The text path of an access chain rooted at a free name, or None."""
        if isinstance(node, ast.Name):
            free = node.id not in bound and node.id not in LITERAL_NAMES
            return node.id if free and node.id not in FUNCTIONS else None
        if isinstance(node, ast.Attribute):
            base = self.path(node.value, bound)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Subscript):
            key = _const_key(node.slice)
            base = None if key is None else self.path(node.value, bound)
            return None if base is None else f"{base}[{json.dumps(key, ensure_ascii=False)}]"
        return None

    def visit(
        self, node: ast.expr, bound: frozenset[str], record: bool = True, genexp: bool = False
    ) -> _Static:
        """Check ``node``; return its static size when the literal text shows it."""
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            path = self.path(node, bound)
            if record and path is not None:
                self.chains[node] = path
            self._access(node, bound, record and path is None)
            return None
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node, bound)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
                raise _refuse(_SYMBOLS.get(type(node.op), type(node.op).__name__), node)
            self.visit(node.operand, bound)
            return None
        if isinstance(node, ast.BoolOp | ast.Compare | ast.IfExp):
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, _SKIPPED):
                    assert isinstance(child, ast.expr)
                    self.visit(child, bound)
            return None
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            sizes = [self.visit(item, bound) for item in node.elts]
            return 1 + sum(1 if s is None else s[0] for s in sizes), False
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    raise _refuse("'**' unpacking", value)
                self.visit(key, bound)
                self.visit(value, bound)
            return None
        if isinstance(node, ast.Call):
            self._call(node, bound)
            return None
        if isinstance(node, _COMPREHENSIONS):
            if isinstance(node, ast.GeneratorExp) and not genexp:
                raise ExpressionError(
                    "a generator expression is allowed only as the argument of "
                    "all(), any(), sum(), min() or max(); elsewhere write a list "
                    "comprehension [...]",
                    column_of(node),
                )
            self._comprehension(node, bound)
            return None
        raise _refuse(_SYMBOLS.get(type(node), f"'{type(node).__name__}'"), node)

    def _access(
        self, node: ast.Name | ast.Attribute | ast.Subscript, bound: frozenset[str], record: bool
    ) -> None:
        if isinstance(node, ast.Name):
            self._name(node, bound)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise ExpressionError(
                    f"the field {node.attr!r} is not allowed: names starting with '_' are private",
                    column_of(node),
                )
            self.visit(node.value, bound, record)
        else:
            if isinstance(node.slice, ast.Slice):
                raise _refuse("a slice", node.slice)
            constant = _const_key(node.slice) is not None
            self.visit(node.value, bound, record if constant else True)
            self.visit(node.slice, bound)

    def _name(self, node: ast.Name, bound: frozenset[str]) -> None:
        if node.id in bound or node.id in LITERAL_NAMES:
            return
        if node.id.startswith("__"):
            raise ExpressionError(f"the name {node.id!r} is not allowed", column_of(node))
        if node.id in FUNCTIONS:
            raise ExpressionError(
                f"{node.id!r} is a function: call it, as in {node.id}(x)", column_of(node)
            )
        self.names.add(node.id)

    def _constant(self, node: ast.Constant) -> _Static:
        value = node.value
        if isinstance(value, str):
            return max(1, len(value)), True
        if value is None or isinstance(value, int | float):
            return None
        raise ExpressionError(f"the literal {value!r} is not allowed", column_of(node))

    def _binary(self, node: ast.BinOp, bound: frozenset[str]) -> _Static:
        if not isinstance(node.op, BINARY_OPERATORS):
            raise _refuse(_SYMBOLS.get(type(node.op), type(node.op).__name__), node)
        left = self.visit(node.left, bound)
        right = self.visit(node.right, bound)
        if isinstance(node.op, ast.Mod) and left is not None and left[1]:
            raise _refuse("string formatting with '%'", node)
        if isinstance(node.op, ast.Add) and left is not None and right is not None:
            text = left[1] and right[1]
            return _static_check(left[0] + right[0] - (0 if text else 1), text, node)
        if isinstance(node.op, ast.Mult):
            for sequence, count in (
                (left, _const_count(node.right)),
                (right, _const_count(node.left)),
            ):
                if sequence is not None and count is not None:
                    size, text = sequence
                    total = size * count if text else 1 + (size - 1) * max(count, 0)
                    return _static_check(max(total, 1), text, node)
        return None

    def _call(self, node: ast.Call, bound: frozenset[str]) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in METHODS:
            if node.args or node.keywords:
                raise ExpressionError(f"'.{func.attr}()' takes no arguments", column_of(node))
            self.visit(func.value, bound)
            return
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS or func.id in bound:
            name = func.id if isinstance(func, ast.Name) else ast.unparse(func)
            raise ExpressionError(
                f"calling {name!r} is not allowed (functions: {', '.join(sorted(FUNCTIONS))}; "
                "methods, of mappings only: .keys(), .values(), .items())",
                column_of(node),
            )
        if node.keywords:
            raise ExpressionError(
                f"keyword arguments are not allowed in {func.id}()",
                column_of(node.keywords[0].value),
            )
        sizes = [self.visit(arg, bound, genexp=func.id in ITERABLE_FUNCTIONS) for arg in node.args]
        text = sizes[0] if sizes and func.id in ("int", "float") else None
        if text is not None and text[1] and text[0] > MAX_DIGITS + 1:
            raise budget_error(
                "size",
                f"{func.id}() of a string of {text[0]:,} characters (at most {MAX_DIGITS:,} digits)",
                node,
            )

    def _comprehension(
        self,
        node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp,
        bound: frozenset[str],
    ) -> None:
        scope = bound
        for gen in node.generators:
            if gen.is_async:
                raise _refuse("'async for'", gen.iter)
            self.visit(gen.iter, scope)
            scope = scope | self._targets(gen.target)
            for condition in gen.ifs:
                self.visit(condition, scope)
        if isinstance(node, ast.DictComp):
            self.visit(node.key, scope)
            self.visit(node.value, scope)
        else:
            self.visit(node.elt, scope)

    def _targets(self, target: ast.expr) -> frozenset[str]:
        if isinstance(target, ast.Tuple | ast.List):
            names: frozenset[str] = frozenset()
            for item in target.elts:
                names |= self._targets(item)
            return names
        if not isinstance(target, ast.Name):
            raise ExpressionError(
                f"a comprehension can bind names only (as in 'for k, v in x.items()'), "
                f"not {ast.unparse(target)!r}",
                column_of(target),
            )
        if target.id.startswith("__") or target.id in LITERAL_NAMES or target.id in FUNCTIONS:
            raise ExpressionError(
                f"{target.id!r} cannot be a comprehension variable", column_of(target)
            )
        return frozenset({target.id})


def _static_check(size: int, text: bool, node: ast.BinOp) -> _Static:
    if size > MAX_SIZE:
        raise budget_error(
            "size",
            f"this would build a value of size {size:,} (at most {MAX_SIZE:,}: "
            "items, counted with what they hold, or characters)",
            node,
        )
    return size, text
