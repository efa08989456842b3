"""The one error of the expression language, and what kind of mistake it reports."""

from __future__ import annotations

import ast
from enum import StrEnum
from typing import Any

from heisen.errors import UsageError


class ErrorKind(StrEnum):
    """What went wrong, so a caller can tell a pipeline mistake from a bad value."""

    SYNTAX = "syntax"  # does not parse, or uses something the language does not allow
    NAME = "name"  # a name the variables do not have
    FIELD = "field"  # a field, key or index the value does not have
    TYPE = "type"  # an operation on a value of the wrong type
    VALUE = "value"  # division by zero, int("abc"), min() of nothing
    BUDGET = "budget"  # too deep, too many steps, too large a value, too much memory


class ExpressionError(UsageError):
    """An expression that does not parse, uses something not allowed, or fails to evaluate.

    ``kind`` says which (an :class:`ErrorKind`, equal to its string: ``"name"``,
    ``"field"``, ``"type"``, ``"value"``, ``"budget"`` or ``"syntax"``); ``column``
    is the 1-based column of the part at fault, when known; ``evidence`` holds the
    values read before the failure (filled by ``evaluate_with_evidence``).
    """

    def __init__(
        self, message: str, column: int | None = None, kind: ErrorKind = ErrorKind.SYNTAX
    ) -> None:
        self.message = message
        self.column = column
        self.kind = kind
        self.evidence: dict[str, Any] = {}
        where = f" (column {column})" if column is not None else ""
        super().__init__(f"{message}{where}")


def column_of(node: ast.AST) -> int | None:
    """The 1-based column where ``node`` starts, if it has one."""
    offset = getattr(node, "col_offset", None)
    return None if offset is None else offset + 1


def source_of(node: ast.AST, limit: int = 80) -> str:
    """The text of ``node`` for a message, shortened to ``limit`` characters."""
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def python_error(node: ast.AST, exc: Exception) -> ExpressionError:
    """Python's own error in evaluating ``node``, as an :class:`ExpressionError` naming it."""
    kind = ErrorKind.TYPE if isinstance(exc, TypeError) else ErrorKind.VALUE
    detail = str(exc) or type(exc).__name__
    return ExpressionError(f"cannot evaluate {source_of(node)!r}: {detail}", column_of(node), kind)
