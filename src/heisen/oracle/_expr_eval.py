"""Evaluate a checked expression tree by walking it, within the budget.

Every node evaluated costs one step; every comprehension iteration one more.
Values built (displays, comprehensions, ``+`` and ``*`` on sequences,
``str()``, ``sum()`` of lists) are sized and charged to the budget *before*
Python builds them where one operation could build a lot (repetition,
concatenation), and item by item where they grow one at a time
(comprehensions), so an evaluation never allocates much beyond
:data:`MAX_MEMORY` and never runs beyond :data:`MAX_STEPS`.

Scopes: the variables are the outermost scope; each comprehension evaluation
gets a fresh local scope (a dict whose misses fall back to the enclosing
scope), so its variables shadow and never leak. As in Python, the first ``for``'s
iterable is evaluated in the enclosing scope.

Evidence: when asked, the values of the outermost access chains marked by the
checker are copied, summarized, the first time each is evaluated.

Python's own errors (``TypeError``, ``ValueError``, ``ArithmeticError``...) are
translated where the operation happens, naming that part of the expression.
"""

from __future__ import annotations

import ast
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from heisen.oracle._expr_access import Scope, field, index, lookup
from heisen.oracle._expr_budget import (
    MAX_STEPS,
    Budget,
    budget_error,
    container_bytes,
    text_bytes,
)
from heisen.oracle._expr_errors import (
    ErrorKind,
    ExpressionError,
    column_of,
    python_error,
    source_of,
)
from heisen.oracle._expr_evidence import summarize
from heisen.oracle._expr_functions import call_function

__all__ = ["evaluate"]

_Env = Mapping[str, Any]
_Comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp

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

_SEQUENCES = (str, bytes, list, tuple)
_SLOT = 8  # bytes per item of the list a comprehension collects into


def evaluate(
    tree: ast.expr,
    chains: Mapping[ast.AST, str],
    variables: _Env,
    evidence: dict[str, Any] | None,
) -> Any:
    """Evaluate ``tree``; every failure is an :class:`ExpressionError`."""
    run = _Run(tree, chains, evidence)
    try:
        return run.eval(tree, variables)
    except ExpressionError:
        raise
    except RecursionError:
        raise budget_error("depth", "the evaluation nested too deeply", tree) from None
    except MemoryError:
        raise budget_error("memory", "Python ran out of memory", tree) from None
    except Exception as exc:  # a value whose own methods fail: still the expression's error
        raise python_error(tree, exc) from None


class _Run:
    def __init__(
        self, root: ast.expr, chains: Mapping[ast.AST, str], evidence: dict[str, Any] | None
    ) -> None:
        self.root = root
        self.budget = Budget()
        self.chains = chains
        self.evidence = evidence

    def eval(self, node: ast.expr, env: _Env) -> Any:
        budget = self.budget
        budget.steps += 1
        if budget.steps > MAX_STEPS:
            raise budget.too_many_steps(self.root)
        value = _HANDLERS[type(node)](self, node, env)
        if self.evidence is not None:
            path = self.chains.get(node)
            if path is not None and path not in self.evidence:
                self.evidence[path] = summarize(value)
        return value

    # names and fields

    def name(self, node: ast.Name, env: _Env) -> Any:
        return lookup(node, env)

    def attribute(self, node: ast.Attribute, env: _Env) -> Any:
        return field(self.eval(node.value, env), node)

    def subscript(self, node: ast.Subscript, env: _Env) -> Any:
        value = self.eval(node.value, env)
        return index(value, self.eval(node.slice, env), node)

    # operators

    def constant(self, node: ast.Constant, env: _Env) -> Any:
        return node.value

    def bool_op(self, node: ast.BoolOp, env: _Env) -> Any:
        result: Any = None
        for operand in node.values:
            result = self.eval(operand, env)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result

    def unary(self, node: ast.UnaryOp, env: _Env) -> Any:
        value = self.eval(node.operand, env)
        try:
            if isinstance(node.op, ast.Not):
                return not value
            return -value if isinstance(node.op, ast.USub) else +value
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise python_error(node, exc) from None

    def binary(self, node: ast.BinOp, env: _Env) -> Any:
        left = self.eval(node.left, env)
        right = self.eval(node.right, env)
        op = type(node.op)
        size = None
        if op is ast.Mult:
            size = self._check_repeat(node, left, right)
        elif op is ast.Add:
            size = self._check_concat(node, left, right)
        elif op is ast.Mod and isinstance(left, str | bytes):
            raise ExpressionError(
                f"string formatting with '%' is not allowed in {source_of(node)!r}",
                column_of(node),
                ErrorKind.TYPE,
            )
        try:
            result = _BINARY[op](left, right)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise python_error(node, exc) from None
        if isinstance(result, int):
            self.budget.check_int(result.bit_length(), node)
        elif size is not None:
            self.budget.remember(result, size)
        elif isinstance(result, set | frozenset):
            self.budget.charge_memory(container_bytes(result, len(result)), node)
        return result

    def _check_repeat(self, node: ast.BinOp, left: Any, right: Any) -> int | None:
        """Check a repetition before it is built; return the size of a list or tuple built."""
        budget = self.budget
        if isinstance(left, int) and isinstance(right, int):
            budget.check_int(left.bit_length() + right.bit_length(), node)
            return None
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
                count = max(count, 0)
                if isinstance(sequence, str | bytes):
                    budget.check_size(len(sequence) * count, node)
                    budget.charge_memory(text_bytes(sequence, len(sequence) * count), node)
                    return None
                size = 1 + (budget.size_of(sequence) - 1) * count
                budget.check_size(size, node)
                budget.charge_memory(container_bytes(sequence, len(sequence) * count), node)
                return size
        return None

    def _check_concat(self, node: ast.BinOp, left: Any, right: Any) -> int | None:
        """Check a concatenation before it is built; return the size of a list or tuple built."""
        budget = self.budget
        if isinstance(left, int) and isinstance(right, int):
            budget.check_int(max(left.bit_length(), right.bit_length()) + 1, node)
        elif isinstance(left, str | bytes) and isinstance(right, type(left)):
            budget.check_size(len(left) + len(right), node)
            wide = isinstance(left, str) and not (left.isascii() and right.isascii())
            budget.charge_memory(text_bytes("é" if wide else "", len(left) + len(right)), node)
        elif isinstance(left, list | tuple) and isinstance(right, type(left)):
            size = budget.size_of(left) + budget.size_of(right) - 1
            budget.check_size(size, node)
            budget.charge_memory(container_bytes(left, len(left) + len(right)), node)
            return size
        return None

    def compare(self, node: ast.Compare, env: _Env) -> Any:
        left = self.eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comparator, env)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise python_error(node, exc) from None
            left = right
        return True

    def if_exp(self, node: ast.IfExp, env: _Env) -> Any:
        return self.eval(node.body if self.eval(node.test, env) else node.orelse, env)

    # displays and calls

    def display(self, node: ast.List | ast.Tuple | ast.Set, env: _Env) -> Any:
        values = [self.eval(item, env) for item in node.elts]
        kind: type = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
        return self._built(node, kind, values, 1 + sum(map(self.budget.size_of, values)))

    def dict_display(self, node: ast.Dict, env: _Env) -> Any:
        pairs = []
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            assert key_node is not None
            pairs.append((self.eval(key_node, env), self.eval(value_node, env)))
        size = 1 + sum(self.budget.size_of(k) + self.budget.size_of(v) for k, v in pairs)
        return self._built(node, dict, pairs, size)

    def _built(self, node: ast.expr, kind: type, items: list[Any], size: int) -> Any:
        self.budget.check_size(size, node)
        self.budget.charge_memory(container_bytes(kind(), len(items)), node)
        try:
            value = kind(items)
        except TypeError as exc:  # an unhashable set item or dict key
            raise python_error(node, exc) from None
        self.budget.remember(value, size)
        return value

    def call(self, node: ast.Call, env: _Env) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute):
            target = self.eval(func.value, env)
            if not isinstance(target, Mapping):
                raise ExpressionError(
                    f"'.{func.attr}()' needs a mapping, but {source_of(func.value)} is a value "
                    f"of type {type(target).__name__}",
                    column_of(node),
                    ErrorKind.TYPE,
                )
            return getattr(target, func.attr)()
        assert isinstance(func, ast.Name)
        args = [self.eval(arg, env) for arg in node.args]
        try:
            return call_function(self.budget, func.id, args, node)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise python_error(node, exc) from None

    # comprehensions

    def list_comp(self, node: ast.ListComp | ast.SetComp, env: _Env) -> Any:
        local = Scope(env)
        values: list[Any] = []
        size = 1
        for _ in self._loops(node, 0, env, local):
            value = self.eval(node.elt, local)
            size += self.budget.size_of(value)
            self.budget.check_size(size, node)
            self.budget.charge_memory(_SLOT, node)
            values.append(value)
        if isinstance(node, ast.ListComp):
            self.budget.remember(values, size)
            return values
        return self._built(node, set, values, size)

    def dict_comp(self, node: ast.DictComp, env: _Env) -> Any:
        local = Scope(env)
        pairs: list[tuple[Any, Any]] = []
        size = 1
        for _ in self._loops(node, 0, env, local):
            key, value = self.eval(node.key, local), self.eval(node.value, local)
            size += self.budget.size_of(key) + self.budget.size_of(value)
            self.budget.check_size(size, node)
            self.budget.charge_memory(_SLOT, node)
            pairs.append((key, value))
        return self._built(node, dict, pairs, size)

    def generator(self, node: ast.GeneratorExp, env: _Env) -> Iterator[Any]:
        local = Scope(env)
        for _ in self._loops(node, 0, env, local):
            yield self.eval(node.elt, local)

    def _loops(
        self, node: _Comprehension, index: int, outer: _Env, local: dict[str, Any]
    ) -> Iterator[None]:
        """Bind the variables of ``node.generators[index:]`` once per combination, in order."""
        gen = node.generators[index]
        iterable = self.eval(gen.iter, outer if index == 0 else local)
        try:
            iterator = iter(iterable)
        except TypeError:
            raise ExpressionError(
                f"cannot iterate over {source_of(gen.iter)} "
                f"(a value of type {type(iterable).__name__})",
                column_of(gen.iter),
                ErrorKind.TYPE,
            ) from None
        last = index + 1 == len(node.generators)
        budget, target, conditions = self.budget, gen.target, gen.ifs
        for item in iterator:
            budget.steps += 1
            if budget.steps > MAX_STEPS:
                raise budget.too_many_steps(node)
            if type(target) is ast.Name:
                local[target.id] = item
            else:
                self._bind(target, item, local)
            if conditions and not self._holds(conditions, local):
                continue
            if last:
                yield None
            else:
                yield from self._loops(node, index + 1, outer, local)

    def _holds(self, conditions: list[ast.expr], env: _Env) -> bool:
        for condition in conditions:
            if not self.eval(condition, env):
                return False
        return True

    def _bind(self, target: ast.expr, item: Any, local: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            local[target.id] = item
            return
        assert isinstance(target, ast.Tuple | ast.List)
        wanted = len(target.elts)
        try:
            values = tuple(itertools.islice(iter(item), wanted + 1))
        except TypeError:
            values = None
        if values is None or len(values) != wanted:
            got = f"a value of type {type(item).__name__}"
            if values is not None:
                got = f"{len(values) if len(values) <= wanted else 'more'} values"
            raise ExpressionError(
                f"cannot unpack into {ast.unparse(target)!r}: expected {wanted} values, got {got}",
                column_of(target),
                ErrorKind.TYPE,
            )
        for part, value in zip(target.elts, values, strict=True):
            self._bind(part, value, local)


_HANDLERS: Mapping[type[ast.AST], Callable[[_Run, Any, _Env], Any]] = {
    ast.Constant: _Run.constant,
    ast.Name: _Run.name,
    ast.Attribute: _Run.attribute,
    ast.Subscript: _Run.subscript,
    ast.BoolOp: _Run.bool_op,
    ast.UnaryOp: _Run.unary,
    ast.BinOp: _Run.binary,
    ast.Compare: _Run.compare,
    ast.IfExp: _Run.if_exp,
    ast.List: _Run.display,
    ast.Tuple: _Run.display,
    ast.Set: _Run.display,
    ast.Dict: _Run.dict_display,
    ast.Call: _Run.call,
    ast.ListComp: _Run.list_comp,
    ast.SetComp: _Run.list_comp,
    ast.DictComp: _Run.dict_comp,
    ast.GeneratorExp: _Run.generator,
}
