"""The files a pipeline references, parsed and checked as the phases will read them.

`heisen validate` must refuse what a phase would refuse (or crash on) later,
so each referenced file goes through the very loader its phase uses at run
time: predict's architecture compiler and incident reader, fuzz's OpenAPI
reader, the stub's mapping loader. Loaders only read: no server starts, no
user code is imported.

Every problem is reported twice over: at the pipeline key that names the
file (`phases.predict.architecture (line 74:19)`) and, in its message, at its
place inside the file (`architecture.yaml: services.inventory... (line 12:15)`).
A file that does not exist is not reported here; the pipeline checker says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heisen._yaml import YamlDocument, YamlPath
from heisen.errors import HeisenError, PipelineError, Problem

if TYPE_CHECKING:
    from heisen.fuzz import OpenApiDocument
    from heisen.schema import FuzzSection, Pipeline

__all__ = ["check_referenced_files"]


def check_referenced_files(
    pipeline: Pipeline, document: YamlDocument, base_dir: Path
) -> list[Problem]:
    """Every problem of the files `pipeline` references, located in the pipeline and in the file."""
    found = _Found(document, base_dir)
    phases = pipeline.phases
    if phases.predict:
        from heisen.predict import load_architecture, load_incidents

        if phases.predict.architecture:
            found.load(
                ("phases", "predict", "architecture"),
                phases.predict.architecture,
                load_architecture,
            )
        if phases.predict.incidents:
            found.load(("phases", "predict", "incidents"), phases.predict.incidents, load_incidents)
    if phases.fuzz and phases.fuzz.openapi:
        _check_openapi(found, pipeline, phases.fuzz)
    owners: list[tuple[YamlPath, str | None]] = [
        (("dependencies", name), dep.stub) for name, dep in pipeline.dependencies.items()
    ]
    owners += [(("services", name), service.stub) for name, service in pipeline.services.items()]
    for path, stub in owners:
        if stub:
            from heisen.system.stub import load_mappings

            def mappings(root: Path) -> Any:  # proxyBaseUrl obeys the pipeline's allow_hosts
                return load_mappings(root, pipeline.allow_hosts)

            found.load((*path, "stub"), stub, mappings, directory=True)
    return found.problems


class _Found:
    """Problems of referenced files, each re-located at the pipeline key that names the file."""

    def __init__(self, document: YamlDocument, base_dir: Path) -> None:
        self.document = document
        self.base_dir = base_dir
        self.problems: list[Problem] = []

    def add(self, key: YamlPath, message: str) -> None:
        self.problems.append(self.document.problem(key, message))

    def load(
        self,
        key: YamlPath,
        relative: str,
        loader: Callable[[Path], Any],
        *,
        directory: bool = False,
    ) -> Any:
        """`loader`'s result for the file at `key`, or None after recording why it failed."""
        target = self.base_dir / relative
        try:
            if not (target.is_dir() if directory else target.is_file()):
                return None  # missing: the pipeline checker reports it
        except OSError:
            return None  # cannot be looked up: the pipeline checker reports it
        try:
            return loader(target)
        except PipelineError as error:
            where = self.shown(error.source)
            for problem in error.problems:
                inside = problem if problem.path or problem.line else problem.message
                self.add(key, f"{where}: {inside}")
        except HeisenError as error:
            self.add(key, f"{relative}: {error}")
        except RecursionError:
            self.add(key, f"{relative}: nests too deeply to be read")
        except OSError as error:
            self.add(key, f"{relative}: cannot be read: {error.strerror or error}")
        except Exception as error:  # a loader bug must still end in a located exit 2
            self.add(
                key,
                f"{relative}: could not be read ({type(error).__name__}: {error}); "
                "this is a bug in heisen, please report it with the file",
            )
        return None

    def shown(self, source: str) -> str:
        """`source` relative to the pipeline's folder when it lies under it."""
        try:
            return str(Path(source).relative_to(self.base_dir))
        except ValueError:
            try:
                return str(Path(source).resolve().relative_to(self.base_dir.resolve()))
            except ValueError:
                return source


def _check_openapi(found: _Found, pipeline: Pipeline, section: FuzzSection) -> None:
    """The document loads, and the operation the fuzz phase will pick is in it."""
    from heisen.fuzz import load_openapi

    assert section.openapi is not None
    document: OpenApiDocument | None = found.load(
        ("phases", "fuzz", "openapi"), section.openapi, load_openapi
    )
    if document is None:
        return
    listing = ", ".join(op.key for op in document.operations) or "none"
    shown = found.shown(document.source)
    request = pipeline.scenario.requests.get(section.request) if section.request else None
    operation = None
    if section.operation:
        wanted = section.operation.strip()
        method, _, route = wanted.partition(" ")
        key = f"{method.upper()} {route.strip()}"
        operation = next(
            (op for op in document.operations if key == op.key or wanted == op.operation_id),
            None,
        )
        if operation is None:
            found.add(
                ("phases", "fuzz", "operation"),
                f"{shown} has no operation {wanted!r} (operations: {listing})",
            )
            return
    elif request is None:
        found.add(
            ("phases", "fuzz"),
            f"{shown}: name the operation to fuzz with operation: (one of {listing}) "
            "or a scenario request with request:",
        )
        return
    if request is None or "{{" in request.path or not _plain_path(request.path):
        return  # known only once rendered at run time, or already reported as malformed
    if operation is None:
        if not any(op.matches(request.method, request.path) for op in document.operations):
            found.add(
                ("phases", "fuzz", "request"),
                f"{shown}: no operation matches {request.method.upper()} {request.path}; "
                f"name it with operation: (operations: {listing})",
            )
    elif not operation.matches(request.method, request.path):
        found.add(
            ("phases", "fuzz", "request"),
            f"{shown}: request {section.request!r} ({request.method.upper()} {request.path}) "
            f"is not the operation {operation.key}",
        )


def _plain_path(path: str) -> bool:
    return path.startswith("/") and not any(char.isspace() for char in path)
