"""Safe YAML loading that remembers where every value was written.

`load_yaml_file` refuses what a hostile or mistaken file could do to us
before parsing it (a directory, a binary file, a file over the size cap) and
while walking it (an alias bomb: a few lines that expand to billions of
nodes). The walk records the line and column of every mapping key and value,
so a schema error on `phases.stress.trials` can say where it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heisen.errors import PipelineError, Problem

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000

_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in (
        "map",
        "seq",
        "str",
        "int",
        "float",
        "bool",
        "null",
        "timestamp",
        "binary",
        "omap",
        "set",
        "merge",
    )
)

Location = tuple[int, int]
YamlPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A loaded document and the position (line, column; 1-based) of each path in it."""

    source: str
    data: Any
    positions: dict[YamlPath, Location] = field(default_factory=dict)

    def locate(self, path: YamlPath) -> Location | None:
        """The position of `path`, or of its nearest ancestor that has one."""
        while True:
            if path in self.positions:
                return self.positions[path]
            if not path:
                return None
            path = path[:-1]

    def problem(self, path: YamlPath, message: str) -> Problem:
        where = self.locate(path)
        return Problem(
            path=format_path(path),
            message=message,
            line=where[0] if where else None,
            column=where[1] if where else None,
        )


def format_path(path: YamlPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def load_yaml_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> YamlDocument:
    source = str(path)
    if not path.exists():
        raise PipelineError(source, [Problem("", f"no such file: {path}")])
    if path.is_dir():
        raise PipelineError(source, [Problem("", f"{path} is a directory, not a YAML file")])
    size = path.stat().st_size
    if size > max_bytes:
        raise PipelineError(
            source,
            [
                Problem(
                    "",
                    f"the file is {size / 1e6:.1f} MB; YAML inputs are capped at {max_bytes / 1e6:.0f} MB",
                )
            ],
        )
    raw = path.read_bytes()
    return load_yaml_text(raw, source=source)


def load_yaml_text(raw: bytes | str, *, source: str) -> YamlDocument:
    if isinstance(raw, bytes):
        if b"\x00" in raw:
            raise PipelineError(source, [Problem("", "this is a binary file, not YAML text")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PipelineError(
                source, [Problem("", f"not UTF-8 text (byte {exc.start}): is this a binary file?")]
            ) from exc
    else:
        text = raw
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = Problem(
            "",
            f"invalid YAML: {exc.problem or exc}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
        raise PipelineError(source, [problem]) from exc
    except yaml.YAMLError as exc:
        raise PipelineError(source, [Problem("", f"invalid YAML: {exc}")]) from exc
    document = YamlDocument(source=source, data=None)
    if node is None:
        return document
    walker = _Walker(document)
    document.data = walker.build(node, ())
    return document


class _Walker:
    """Builds plain Python values from a node graph, counting every node it expands."""

    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.expanded = 0
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.expanded += 1
        if self.expanded > MAX_EXPANDED_NODES:
            raise PipelineError(
                self.document.source,
                [
                    Problem(
                        format_path(path),
                        f"the document expands to more than {MAX_EXPANDED_NODES:,} values "
                        "(an alias bomb?); refusing to load it",
                        line=node.start_mark.line + 1,
                        column=node.start_mark.column + 1,
                    )
                ],
            )
        self.document.positions.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if node.tag not in _PLAIN_TAGS:
            raise PipelineError(
                self.document.source,
                [
                    self.document.problem(
                        path, f"the YAML tag {node.tag!r} is not allowed: plain data only"
                    )
                ],
            )
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) and key is not None:
                    key = str(key)
                result[key] = self.build(value_node, (*path, str(key)))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)
