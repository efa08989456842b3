"""The one exception tree of heisen, and the exit code each branch maps to.

    HeisenError
    ├── UsageError                 exit 2: the user asked for something that cannot be done
    │   └── PipelineError          exit 2: the pipeline file is wrong; carries every problem found
    ├── SystemUnavailable          exit 3: a service did not start, a port is taken, no permission
    │   └── PhaseCrashed           exit 3: heisen itself failed inside a phase (a bug, a full disk)
    ├── NotEvaluated               exit 2 or 3: an invariant could not be evaluated in a trial
    └── Interrupted                exit 130: Ctrl-C or SIGTERM

A violated invariant is not an exception: it is a finding, recorded in the
manifest, that the CLI maps to exit code 1. An error is never a violation:
nothing but a finding exits 1.

`NotEvaluated` and `PhaseCrashed` carry what the phase measured before they
happened (`outputs`, `findings`), so the manifest keeps it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from heisen._serialised import JsonObject

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INCONCLUSIVE = 4
EXIT_INTERRUPTED = 130


class HeisenError(Exception):
    """Base of every error heisen raises on purpose."""

    exit_code = EXIT_USAGE


class UsageError(HeisenError):
    """Bad input: a flag, a file, a value. Exit 2."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a YAML document, located by its path and position."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def location(self) -> str:
        if self.line is None:
            return self.path or "<document>"
        return f"{self.path or '<document>'} (line {self.line}:{self.column or 1})"

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"


class PipelineError(UsageError):
    """A pipeline (or another YAML input) that does not validate: all its problems at once."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  {problem}" for problem in problems]
        super().__init__("\n".join(lines))


def did_you_mean(wanted: str, names: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest of `names`, or nothing."""
    close = difflib.get_close_matches(wanted, list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class SystemUnavailable(HeisenError):
    """The environment failed: a process did not start, a port is taken, no permission. Exit 3."""

    exit_code = EXIT_ENVIRONMENT


class _Partial:
    """What a phase measured before it stopped on an error."""

    outputs: JsonObject
    findings: list[Any]

    def keep(self, outputs: JsonObject | None, findings: list[Any] | None) -> None:
        self.outputs = dict(outputs or {})
        self.findings = list(findings or [])


class NotEvaluated(_Partial, HeisenError):
    """An invariant could not be evaluated: exit 2 when the pipeline is at fault, 3 otherwise."""

    def __init__(
        self,
        message: str,
        *,
        fault: str,
        outputs: JsonObject | None = None,
        findings: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.fault = fault
        self.exit_code = EXIT_USAGE if fault == "pipeline" else EXIT_ENVIRONMENT
        self.keep(outputs, findings)


class PhaseCrashed(_Partial, SystemUnavailable):
    """An unexpected exception inside a phase: heisen's fault or its machine's, never a race."""

    def __init__(
        self,
        message: str,
        *,
        outputs: JsonObject | None = None,
        findings: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.keep(outputs, findings)


class Interrupted(HeisenError):
    """The run was interrupted by Ctrl-C or SIGTERM. Exit 130."""

    exit_code = EXIT_INTERRUPTED


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, HeisenError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_ENVIRONMENT
