"""The safe expression language of invariants' ``expect:``.

An expression is parsed once into a Python AST (``ast.parse(mode="eval")``),
checked against a strict allowlist, and evaluated by walking the tree within a
cost budget. Nothing is ever compiled or passed to ``eval``.

Allowed
-------

* literals: numbers, strings, ``true``/``false``/``null`` (and
  ``True``/``False``/``None``); list, tuple, set and dict displays
  (``[1, 2]``, ``(a, b)``, ``{"a", "b"}``, ``{"k": 1}``);
* names (the probe's variables), fields ``a.b``, keys and indexes ``a["k"]``,
  ``a[0]``, ``a[-1]``;
* arithmetic ``+ - * / // %`` and unary ``-``/``+``; ``+`` and ``*`` also
  concatenate and repeat strings, lists and tuples; ``-`` of two sets;
* chained comparisons ``== != < <= > >= in not in is is not``;
  ``and``/``or``/``not``; ``x if c else y``;
* the functions ``abs all any float int len max min round str sum``, with
  positional arguments only;
* the methods ``.keys()``, ``.values()``, ``.items()``, on mappings only;
* list, set and dict comprehensions, and generator expressions as the
  argument of ``all``, ``any``, ``sum``, ``min``, ``max``, each with any
  number of ``for`` and ``if`` clauses and tuple targets::

      all(v <= 10 for v in body.accepted.values())
      sum(r["qty"] for r in rows if r["ok"])
      len({o["user"] for o in rows}) == len(rows)
      all(n <= 1 for user, n in body.per_user.items())

  A comprehension's variables are its own: they shadow the probe's names and
  are gone after it, as in Python.

Not allowed: ``**`` and bit operators, attributes starting with ``_``, names
starting with ``__``, calls of anything else, keyword arguments, ``*``/``**``
unpacking, lambdas, slices, f-strings and ``%`` formatting, ``:=``,
``async for``.

Budget
------

Each evaluation has a bounded cost; going over raises :class:`ExpressionError`
with ``kind == "budget"`` naming the budget, never a hang, ``MemoryError`` or
``RecursionError``. What the text shows is refused by :func:`parse_expression`
already (so ``heisen validate`` reports it): its length, its nesting depth,
and repetition of a literal beyond the size limit (``"x" * 1000000000``,
``[[0] * 1000000] * 1000000``).

==================  ==========  ===============================================
constant            value       bounds
==================  ==========  ===============================================
:data:`MAX_LENGTH`  2,000       characters of the expression's text
:data:`MAX_DEPTH`   50          nesting depth of the parsed expression (each
                                ``for`` of a comprehension counts one level)
:data:`MAX_STEPS`   200,000     nodes evaluated plus comprehension iterations
:data:`MAX_SIZE`    1,000,000   size of any one value built: a string's
                                characters, or a container's items counted
                                with what they hold, shared items once per
                                occurrence (``[[0] * 1000] * 1000`` has size
                                1,001,001), an integer beyond 64 bits its
                                digits; also the characters ``str()`` prints
:data:`MAX_MEMORY`  4,000,000   bytes of all the strings and containers built
                                in one evaluation (estimated before building)
:data:`MAX_DIGITS`  4,300       digits of an integer built by arithmetic, or
                                of the string given to ``int()``/``float()``
==================  ==========  ===============================================

Steps bound time (about a microsecond each: the whole budget is a fraction
of a second); size bounds what one builtin call (``==``, ``in``, ``str``,
``sum``) can do with a value; memory bounds what the evaluation can hold.
Values read from the variables cost nothing until the expression builds
something out of them (then they count in the size of what is built). To
count matching items write ``sum(1 for r in rows if ...)``: it builds
nothing.

Names and evidence
------------------

:attr:`Expression.names` is the set of root names the expression reads from
its variables (not comprehension variables, functions or literal names), so a
validator can refuse names a probe never gives.
:meth:`Expression.evaluate_with_evidence` also returns the values the
expression read, keyed by their access path (``body.likes``,
``load.redeem.status["200"]``): the outermost chains of fields and constant
keys rooted at a variable, each summarized (see
:mod:`heisen.oracle._expr_evidence`). Inside a comprehension only chains that
do not depend on its variables are recorded, once; the iterable's chain stands
for the items.

Errors
------

Every failure is an :class:`ExpressionError` (a :class:`~heisen.errors.UsageError`)
whose ``kind`` is ``"syntax"`` (does not parse, or not allowed), ``"name"``
(``unknown name 'valu' (names available: hits, value); did you mean
'value'?``), ``"field"`` (``body has no field 'valeu' (fields: likes, id)``,
a missing key, an index out of range), ``"type"`` (``None > 1``, ``.keys()``
of a list), ``"value"`` (division by zero, ``int("x")``) or ``"budget"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from heisen.oracle._expr_budget import (
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_LENGTH,
    MAX_MEMORY,
    MAX_SIZE,
    MAX_STEPS,
)
from heisen.oracle._expr_check import analyse
from heisen.oracle._expr_errors import ErrorKind, ExpressionError
from heisen.oracle._expr_eval import evaluate
from heisen.oracle._expr_functions import FUNCTIONS

if TYPE_CHECKING:
    import ast

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_LENGTH",
    "MAX_MEMORY",
    "MAX_SIZE",
    "MAX_STEPS",
    "ErrorKind",
    "Expression",
    "ExpressionError",
    "parse_expression",
]


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed ``expect:`` expression; evaluate it against a probe's variables."""

    text: str
    names: frozenset[str]
    _tree: ast.expr = field(repr=False, compare=False)
    _chains: Mapping[ast.AST, str] = field(repr=False, compare=False, default_factory=dict)

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate against ``variables``; raise :class:`ExpressionError` on any failure."""
        return evaluate(self._tree, self._chains, variables, None)

    def evaluate_with_evidence(self, variables: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Evaluate; also return the values read, keyed by their path (``{"body.likes": 87}``).

        On failure the :class:`ExpressionError` carries what was read so far in
        its ``evidence``.
        """
        evidence: dict[str, Any] = {}
        try:
            result = evaluate(self._tree, self._chains, variables, evidence)
        except ExpressionError as exc:
            exc.evidence = evidence
            raise
        return result, evidence

    def __str__(self) -> str:
        return self.text


def parse_expression(text: str) -> Expression:
    """Parse and check ``text``; raise :class:`ExpressionError` naming the first thing refused."""
    analysis = analyse(text)
    return Expression(text, analysis.names, analysis.tree, analysis.chains)
