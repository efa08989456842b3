"""The rules ARCHITECTURE.md states, checked on every import in src/heisen.

Each rule fails with the offending module, line and import, so a violation
is fixed where it is written. The checker itself is tested on a planted
violation of each rule: a rule that cannot fail proves nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src"

PHASES = ("predict", "stress", "fuzz", "isolate", "contain", "chaos")

# Layers, bottom to top; a module may import its own layer and those below,
# with the exceptions the rules below spell out.
CORE, PLATFORM, PHASE, ORCHESTRATION, REPORT, CLI = range(6)
LAYER_NAMES = ("core", "platform", "phase", "orchestration", "report", "cli")
PACKAGE_LAYERS = {
    "system": PLATFORM,
    "oracle": PLATFORM,
    **dict.fromkeys(PHASES, PHASE),
    "pipeline": ORCHESTRATION,
    "_referenced": ORCHESTRATION,
    "runner": ORCHESTRATION,
    "agent": ORCHESTRATION,
    "report": REPORT,
    "cli": CLI,
    "__main__": CLI,
}

# Separate processes heisen starts (or the one the user starts to replay a
# fuzz case): each owns its own exit status.
PROCESS_ENTRY_POINTS = {
    "heisen.__main__",
    "heisen.fuzz._replay",
    "heisen.oracle._python_worker",
    "heisen.system._proxyd",
    "heisen.system.stub.__main__",  # the stub server, in its own process
    "heisen.system._process",  # the child's pre-exec hook, before the service runs
}
EXIT_CALLS = {"sys.exit", "SystemExit", "typer.Exit"}


@dataclass(frozen=True)
class Import:
    module: tuple[str, ...]  # the importing module
    target: tuple[str, ...]  # what it imports: a module, or a module's name
    line: int
    origin: tuple[str, ...] = ()  # the module a name comes from (`from origin import name`)

    def __str__(self) -> str:
        return f"{'.'.join(self.module)}:{self.line} imports {'.'.join(self.target)}"


def module_name(path: Path, root: Path) -> tuple[str, ...]:
    parts = path.relative_to(root).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports_of(module: tuple[str, ...], source: str, *, is_package: bool) -> Iterator[Import]:
    package = module if is_package else module[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                origin = base + tuple(node.module.split(".") if node.module else ())
            else:
                origin = tuple((node.module or "").split("."))
            yield Import(module, origin, node.lineno)
            for alias in node.names:
                yield Import(module, (*origin, alias.name), node.lineno, origin)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, tuple(alias.name.split(".")), node.lineno)


def layer_of(module: tuple[str, ...]) -> int:
    return PACKAGE_LAYERS.get(module[1], CORE) if len(module) > 1 else CORE


def private_violation(item: Import) -> bool:
    """`a.b._c` is private to `a.b`: only modules inside `a.b` may import it."""
    for position, part in enumerate(item.target):
        if part.startswith("_") and not part.startswith("__"):
            owner = item.target[:position]
            if item.module[: len(owner)] != owner:
                return True
    return False


def layer_violation(item: Import) -> str | None:
    importer, imported = layer_of(item.module), layer_of(item.target)
    if len(item.target) < 2 or item.target[0] != "heisen":
        return None
    if importer == PHASE and imported == PHASE:
        own, other = item.module[1], item.target[1]
        public_stress = item.target == ("heisen", "stress") or item.origin == ("heisen", "stress")
        if own == other or public_stress:
            return None
        return f"a phase imports no other phase (only heisen.stress's public API): {other}"
    if importer == REPORT and imported not in (CORE, REPORT):
        return "report reads events and the manifest only"
    if imported > importer:
        return f"{LAYER_NAMES[importer]} imports {LAYER_NAMES[imported]}, a layer above it"
    return None


def exit_calls(module: tuple[str, ...], source: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call | ast.Raise):
            callee = node.func if isinstance(node, ast.Call) else node.exc
            if isinstance(callee, ast.Call):
                callee = callee.func
            name = ast.unparse(callee) if callee is not None else ""
            if name in EXIT_CALLS:
                yield node.lineno, name


def violations(sources: dict[tuple[str, ...], tuple[str, bool]]) -> list[str]:
    """Every broken rule in `{module: (source, is_package)}`, one line per import and rule."""
    found: dict[tuple[tuple[str, ...], int, str], str] = {}
    for module, (source, is_package) in sorted(sources.items()):
        for item in imports_of(module, source, is_package=is_package):
            if item.target[0] != "heisen":
                continue
            reasons = [layer_violation(item)]
            if private_violation(item):
                reasons.append("another package's private module")
            for reason in filter(None, reasons):
                found.setdefault((module, item.line, reason), f"{item}: {reason}")
        in_cli = layer_of(module) == CLI
        if not in_cli and ".".join(module) not in PROCESS_ENTRY_POINTS:
            for line, name in exit_calls(module, source):
                found[(module, line, name)] = (
                    f"{'.'.join(module)}:{line} calls {name}: only cli/ maps results to exit codes"
                )
    return list(found.values())


def package_sources(root: Path) -> dict[tuple[str, ...], tuple[str, bool]]:
    return {
        module_name(path, root): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for path in sorted((root / "heisen").rglob("*.py"))
    }


def test_heisen_keeps_its_layers_and_privacy() -> None:
    found = violations(package_sources(SOURCE))
    assert not found, "\n".join(found)


PLANTED = {
    "another package's private module": (
        ("heisen", "chaos", "_planted"),
        "from heisen.stress._records import RequestRecord\n",
    ),
    "a phase imports no other phase": (("heisen", "fuzz", "_planted"), "import heisen.isolate\n"),
    "a layer above it": (
        ("heisen", "system", "_planted"),
        "from heisen.stress import run_trials\n",
    ),
    "core imports platform": (("heisen", "manifest"), "from heisen.system import SystemHandle\n"),
    "report reads events and the manifest only": (
        ("heisen", "report", "_planted"),
        "from heisen.oracle import probes\n",
    ),
    "only cli/ maps results to exit codes": (
        ("heisen", "stress", "adhoc"),
        "import sys\n\ndef run():\n    sys.exit(1)\n",
    ),
}


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_a_planted_violation_is_named_with_its_line(rule: str) -> None:
    module, source = PLANTED[rule]
    found = violations({module: (source, False)})
    assert any(rule in line for line in found), found
    assert all(line.startswith(".".join(module) + ":") for line in found), found


def test_allowed_imports_are_not_flagged() -> None:
    allowed = {
        ("heisen", "chaos", "_allowed"): "from heisen.stress import run_trials, RequestRecord\n",
        ("heisen", "stress", "_allowed"): "from heisen.stress._records import RequestRecord\n",
        ("heisen", "runner"): "from heisen.chaos import run\n",
        ("heisen", "cli", "_allowed"): "import sys\nsys.exit(2)\n",
    }
    found = violations({module: (source, False) for module, source in allowed.items()})
    assert found == []
