"""Check a `python: module:function` probe reference without running any of the user's code.

`heisen validate` must never import the module: an import can do anything
(write files, open connections, abort). The reference is resolved the way an
import would resolve it, with the import system's finders (the pipeline's
directory first, then heisen's own `sys.path`) but without executing a
single module, parent packages included; the module's source is then parsed
with `ast` and its top level searched for the function. What the static look
cannot see through is refused with a message saying so:

- a builtin, frozen or compiled-extension module (`os`, `posix`, `_socket`):
  there is no source to read (`os:abort` is C code);
- a name bound by an assignment or an import (`check = make_check()`,
  `from lib import check`): only `def` / `async def` show a signature.

The parameters are checked the way `call_kwargs` binds them at run time:
heisen passes, by keyword, those of `PYTHON_PROBE_KWARGS` the function names
(all of them when it takes `**kwargs`); a parameter without a default that
heisen does not pass, or a positional-only one, cannot be bound.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PythonRef", "check_python_ref", "locate_source", "parse_ref"]

MAX_SOURCE_BYTES = 5 * 1024 * 1024

_RULE = "python: probes must be Python source modules next to the pipeline or importable from it"


@dataclass(frozen=True, slots=True)
class PythonRef:
    """`module:function`, split."""

    module: str
    function: str

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"


def parse_ref(ref: str) -> PythonRef:
    """`module:function` split, or ValueError saying what is wrong with it."""
    module, sep, function = ref.partition(":")
    if not sep or not module or not function:
        raise ValueError(f"{ref!r} is not module:function")
    if not all(part.isidentifier() for part in module.split(".")):
        raise ValueError(f"{ref!r}: {module!r} is not a module name")
    if not function.isidentifier():
        raise ValueError(
            f"{ref!r}: {function!r} is not a function name "
            "(a probe is a function defined at the top level of its module)"
        )
    return PythonRef(module, function)


def search_path(base_dir: Path | None) -> list[str]:
    """Where a probe's module is looked for: the pipeline's directory, then heisen's `sys.path`."""
    found = [str(base_dir.resolve())] if base_dir is not None else []
    for entry in sys.path:
        absolute = os.path.abspath(entry or os.curdir)
        if absolute not in found:
            found.append(absolute)
    return found


def locate_source(ref: PythonRef, base_dir: Path | None) -> Path:
    """The source file of `ref.module`, found as `import` would find it, or ValueError."""
    parts = ref.module.split(".")
    top = parts[0]
    if top in sys.builtin_module_names:
        raise ValueError(
            f"{_RULE}; {ref} is a builtin/C function ({top} is built into the interpreter)"
        )
    if importlib.machinery.FrozenImporter.find_spec(top) is not None:
        raise ValueError(
            f"{_RULE}; {ref} is in {top}, a frozen standard-library module whose functions "
            "are builtin/C functions heisen cannot check without running them"
        )
    locations: Sequence[str] | None = search_path(base_dir)
    spec = None
    for depth in range(len(parts)):
        name = ".".join(parts[: depth + 1])
        if locations is None:
            raise ValueError(f"cannot import {ref.module!r}: {parts[depth - 1]!r} is not a package")
        spec = importlib.machinery.PathFinder.find_spec(name, list(locations))
        if spec is None:
            raise ValueError(f"cannot import {ref.module!r}: no module named {name!r}")
        locations = spec.submodule_search_locations
    assert spec is not None
    if isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        raise ValueError(
            f"{_RULE}; {ref} is a builtin/C function ({ref.module} is a compiled extension: "
            f"{spec.origin})"
        )
    if spec.origin is None or not spec.has_location:
        raise ValueError(f"{_RULE}; {ref.module} is a namespace package, not a module")
    if not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
        raise ValueError(f"{_RULE}; {ref.module} is not Python source ({spec.origin})")
    return Path(spec.origin)


def _parse(path: Path) -> ast.Module:
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise ValueError(f"{path} is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
        source = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f"{path}, line {line}" if line else str(path)
        raise ValueError(f"{where}: {type(exc).__name__}: {getattr(exc, 'msg', exc)}") from exc


def _top_level(statements: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """The module's top-level statements, looking into `if`, `try` and `with` blocks."""
    for statement in statements:
        yield statement
        if isinstance(statement, ast.If | ast.With | ast.AsyncWith):
            yield from _top_level(statement.body)
            if isinstance(statement, ast.If):
                yield from _top_level(statement.orelse)
        elif isinstance(statement, ast.Try | ast.TryStar):
            for block in (statement.body, statement.orelse, statement.finalbody):
                yield from _top_level(block)
            for handler in statement.handlers:
                yield from _top_level(handler.body)


def _binds(statement: ast.stmt, name: str) -> bool:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return statement.name == name
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return any((alias.asname or alias.name.split(".")[0]) == name for alias in statement.names)
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
        targets = [statement.target]
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and node.id == name:
                return True
    return False


def _definition(
    tree: ast.Module, ref: PythonRef, path: Path
) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The last top-level statement binding `ref.function`: a def, or ValueError saying what it is."""
    binding = None
    for statement in _top_level(tree.body):
        if _binds(statement, ref.function):
            binding = statement
        elif isinstance(statement, ast.ImportFrom) and any(a.name == "*" for a in statement.names):
            binding = binding or statement
    if isinstance(binding, ast.FunctionDef | ast.AsyncFunctionDef):
        return binding
    if binding is None:
        raise ValueError(f"{ref}: {path.name} defines no top-level function {ref.function!r}")
    line = f"{path.name}, line {binding.lineno}"
    if isinstance(binding, ast.ClassDef):
        raise ValueError(f"{ref}: {ref.function!r} is a class ({line}); a probe is a function")
    what = "an import" if isinstance(binding, ast.Import | ast.ImportFrom) else "an assignment"
    raise ValueError(
        f"{ref}: {ref.function!r} is bound by {what} ({line}), which heisen cannot see through "
        f"without running {path.name}; define the probe with `def {ref.function}(...)` "
        "(it may call the other function)"
    )


def _binding_problem(
    ref: PythonRef, function: ast.FunctionDef | ast.AsyncFunctionDef, allowed: frozenset[str]
) -> str | None:
    arguments = function.args
    passed = ", ".join(sorted(allowed))
    positional = [*arguments.posonlyargs, *arguments.args]
    first_default = len(positional) - len(arguments.defaults)
    for index, argument in enumerate(positional):
        has_default = index >= first_default
        if argument in arguments.posonlyargs and not has_default:
            return (
                f"{ref}: parameter {argument.arg!r} is positional-only and cannot be bound; "
                f"a probe function is called with keywords from {passed}"
            )
        if not has_default and argument.arg not in allowed:
            return (
                f"{ref}: parameter {argument.arg!r} cannot be bound; a probe function is called "
                f"with keywords from {passed}"
            )
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        if default is None and argument.arg not in allowed:
            return (
                f"{ref}: parameter {argument.arg!r} cannot be bound; a probe function is called "
                f"with keywords from {passed}"
            )
    return None


def check_python_ref(
    ref: str, allowed_kwargs: Iterable[str], base_dir: Path | None = None
) -> str | None:
    """Why `ref` cannot serve as a probe called with `allowed_kwargs`, or None when it can.

    Never imports anything: see the module docstring.
    """
    try:
        parsed = parse_ref(ref)
        path = locate_source(parsed, base_dir)
        function = _definition(_parse(path), parsed, path)
    except ValueError as exc:
        return str(exc)
    return _binding_problem(parsed, function, frozenset(allowed_kwargs))
