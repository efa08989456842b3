"""Safe YAML loading that remembers where every value was written.

`load_yaml_file` refuses what a hostile or mistaken file could do to us
before parsing it: anything but a regular file (a directory, a FIFO that
would block forever, `/dev/zero` that would fill memory) is refused from one
`fstat` of a non-blocking descriptor, and at most the size cap plus one byte
is ever read. While composing it refuses nesting deeper than `MAX_DEPTH`
(the composer recurses; a deep file would otherwise end in RecursionError),
and while walking it refuses an alias bomb (a few lines that expand to
billions of nodes), duplicate keys (naming both lines), tags beyond plain
data (`!!binary`, `!!timestamp`, `!!set`, `!python/...`, custom `!tags`),
scalars an explicit tag cannot construct (`!!int "abc"`) and NUL bytes in
strings. A bare `on:` key stays the word "on" (YAML 1.1 would read the
boolean true, and heisen's `on:` fields name a dependency). Merge keys (`<<: *defaults`) are handled as YAML 1.1 says: the
mapping's own keys win, then earlier merged mappings over later ones.

The walk records the line and column of every mapping key and value, so a
schema error on `phases.stress.trials` can say where it was written.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heisen.errors import PipelineError, Problem

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 64
"""Nesting levels of mappings and sequences a YAML input may have."""

_TAG = "tag:yaml.org,2002:"
_PLAIN_SCALAR_TAGS = frozenset(_TAG + name for name in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE, _TIMESTAMP = (_TAG + n for n in ("map", "seq", "merge", "timestamp"))

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


def clipped(value: object, limit: int = 60) -> str:
    """`repr(value)`, cut to about `limit` characters: messages echo what was written, not all of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def format_path(path: YamlPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_capped(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, or PipelineError saying why not.

    Opened non-blocking (a FIFO without a writer does not hang the open) and
    checked with fstat on that same descriptor before a byte is read; at most
    `max_bytes + 1` bytes are read, so a file that grows meanwhile is caught too.
    """
    source = str(path)

    def refuse(message: str) -> PipelineError:
        return PipelineError(source, [Problem("", message)])

    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise refuse(f"no such file: {path}") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing elsewhere
            raise refuse(f"{path} is not a regular file; a YAML input is a file") from None
        raise refuse(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        for test, kind in _KINDS:
            if test(info.st_mode):
                raise refuse(f"{path} is {kind}, not a YAML file; a YAML input is a regular file")
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"{path} is not a regular file; a YAML input is a regular file")
        if info.st_size > max_bytes:
            raise refuse(_too_big(info.st_size, max_bytes))
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise refuse(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if total > max_bytes:
        raise refuse(_too_big(total, max_bytes, more=True))
    return b"".join(chunks)


def _too_big(size: int, max_bytes: int, *, more: bool = False) -> str:
    amount = f"more than {max_bytes / 1e6:.0f}" if more else f"{size / 1e6:.1f}"
    return f"the file is {amount} MB; YAML inputs are capped at {max_bytes / 1e6:.0f} MB"


def load_yaml_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> YamlDocument:
    return load_yaml_text(read_capped(Path(path), max_bytes=max_bytes), source=str(path))


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
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except _TooDeep as exc:
        problem = Problem(
            "",
            f"the document nests deeper than {MAX_DEPTH} levels; refusing to load it",
            line=exc.mark.line + 1,
            column=exc.mark.column + 1,
        )
        raise PipelineError(source, [problem]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        said = ", ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        problem = Problem(
            "",
            f"invalid YAML: {said}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
        raise PipelineError(source, [problem]) from None
    except yaml.YAMLError as exc:
        raise PipelineError(source, [Problem("", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    document = YamlDocument(source=source, data=None)
    if node is None:
        return document
    _refuse_bombs(node, source)
    walker = _Walker(document, loader.explicit)
    document.data = walker.build(node, ())
    if walker.problems:
        raise PipelineError(source, list(dict.fromkeys(walker.problems)))
    return document


def _children(node: yaml.Node) -> list[tuple[str | int, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        return [
            (str(key.value) if isinstance(key, yaml.ScalarNode) else "?", value)
            for key, value in node.value
        ] + [("?", key) for key, _ in node.value if not isinstance(key, yaml.ScalarNode)]
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    return []


def _expanded_sizes(root: yaml.Node) -> dict[int, float]:
    """How many values each node expands to once aliases are followed (inf: it contains itself).

    Counted over the node graph, each node once (an iterative post-order walk),
    so a bomb of a few lines is measured in microseconds, never expanded.
    """
    sizes: dict[int, float] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for _, child in _children(node))
        elif key in open_nodes:
            sizes[key] = math.inf  # an alias to a node that contains it
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for _, child in _children(node))
    return sizes


def _refuse_bombs(root: yaml.Node, source: str) -> None:
    """PipelineError at the node that makes the document expand past the cap, if one does."""
    sizes = _expanded_sizes(root)
    if sizes[id(root)] <= MAX_EXPANDED_NODES:
        return
    node, seen = root, {id(root)}
    path: YamlPath = ()
    while True:  # down to the largest part that alone is too large
        parts = [(key, child) for key, child in _children(node) if id(child) not in seen]
        key, child = max(parts, key=lambda part: sizes[id(part[1])], default=(0, node))
        if child is node or sizes[id(child)] <= MAX_EXPANDED_NODES:
            break
        node, path = child, (*path, key)
        seen.add(id(child))
    if sizes[id(node)] == math.inf:
        message = (
            "this value contains itself through an alias (a recursive alias); refusing to load it"
        )
    else:
        message = (
            f"the document expands to more than {MAX_EXPANDED_NODES:,} values "
            "(an alias bomb?); refusing to load it"
        )
    mark = node.start_mark
    raise PipelineError(
        source, [Problem(format_path(path), message, line=mark.line + 1, column=mark.column + 1)]
    )


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # pyyaml ships no types here
    """The safe loader, composing only: it counts depth and remembers which tags were written."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.explicit: set[int] = set()  # ids of nodes whose tag was written in the file

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            event = self.peek_event()
            tag = getattr(event, "tag", None)
            node: yaml.Node = super().compose_node(parent, index)
            if tag not in (None, "!"):
                self.explicit.add(id(node))
            return node
        finally:
            self.depth -= 1


class _Walker:
    """Builds plain Python values from a node graph, counting every node it expands.

    Problems that leave the rest of the document readable (a duplicate key, a
    refused tag, NUL in a string) are collected so that all are reported at
    once; the value in question becomes None.
    """

    def __init__(self, document: YamlDocument, explicit: set[int]) -> None:
        self.document = document
        self.explicit = explicit
        self.expanded = 0
        self.problems: list[Problem] = []
        self.constructor = yaml.SafeLoader("")

    def _at(self, node: yaml.Node, path: YamlPath, message: str) -> Problem:
        return Problem(
            format_path(path),
            message,
            line=node.start_mark.line + 1,
            column=node.start_mark.column + 1,
        )

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.expanded += 1
        if self.expanded > MAX_EXPANDED_NODES:
            raise PipelineError(
                self.document.source,
                [
                    self._at(
                        node,
                        path,
                        f"the document expands to more than {MAX_EXPANDED_NODES:,} values "
                        "(an alias bomb?); refusing to load it",
                    )
                ],
            )
        if len(path) > MAX_DEPTH:  # aliases can nest what the composer saw as shallow
            raise PipelineError(
                self.document.source,
                [
                    self._at(
                        node,
                        path[:8],
                        f"the document nests deeper than {MAX_DEPTH} levels "
                        "(a recursive alias?); refusing to load it",
                    )
                ],
            )
        self.document.positions.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.problems.append(self._at(node, path, _tag_message(node.tag)))
        return None

    def _scalar(self, node: yaml.ScalarNode, path: YamlPath) -> Any:
        explicit = id(node) in self.explicit
        if node.tag == _TIMESTAMP and not explicit:
            value: Any = node.value  # a plain 2024-01-01 is text to us, not a date
        elif node.tag not in _PLAIN_SCALAR_TAGS:
            self.problems.append(self._at(node, path, _tag_message(node.tag)))
            return None
        else:
            try:
                value = self.constructor.construct_object(node, deep=True)
            except (ValueError, TypeError, KeyError, ArithmeticError, yaml.YAMLError) as exc:
                kind = node.tag.removeprefix(_TAG)
                shown = repr(node.value if len(node.value) <= 40 else node.value[:40] + "...")
                detail = "" if isinstance(exc, KeyError) else ": " + str(exc).splitlines()[0][:120]
                self.problems.append(
                    self._at(node, path, f"!!{kind} cannot be made of {shown}{detail}")
                )
                return None
        if isinstance(value, str) and "\x00" in value:
            self.problems.append(self._at(node, path, "a NUL byte (\\0) in a string; remove it"))
            return None
        return value

    def _key(self, node: yaml.Node, path: YamlPath) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problems.append(
                self._at(node, path, "a mapping key must be a plain scalar, not a list or mapping")
            )
            return None
        key = self._scalar(node, path)
        explicit = id(node) in self.explicit
        if key is True and node.value.lower() == "on" and node.style is None and not explicit:
            key = "on"  # YAML 1.1 reads a bare `on:` as true; heisen's keys named on mean the word
        if not isinstance(key, str | int | float | bool) and key is not None:
            key = str(key)
        return key

    def _mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self._merge_sources(value_node, path))
                continue
            key = self._key(key_node, path)
            if key is None and key_node.tag != _TAG + "null":
                continue
            line = key_node.start_mark.line + 1
            if key in lines:
                self.problems.append(
                    self._at(
                        key_node,
                        (*path, str(key)),
                        f"duplicate key {key!r}: written "
                        + (
                            f"twice on line {line}"
                            if lines[key] == line
                            else f"on line {lines[key]} and again on line {line}"
                        )
                        + "; keep one",
                    )
                )
                continue
            lines[key] = line
            result[key] = self.build(value_node, (*path, str(key)))
        for source in merged:  # earlier merged mappings win over later ones
            for key, value in self._mapping(source, path).items():
                result.setdefault(key, value)  # (a mapping merging itself is a recursive alias)
        return result

    def _merge_sources(self, value_node: yaml.Node, path: YamlPath) -> Iterator[yaml.MappingNode]:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if isinstance(source, yaml.MappingNode) and source.tag == _MAP:
                yield source
            else:
                self.problems.append(
                    self._at(
                        value_node,
                        (*path, "<<"),
                        "a merge key (<<) takes a mapping or a list of mappings, "
                        "such as <<: *defaults",
                    )
                )
                return


def _tag_message(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return (
        f"the YAML tag {shown} is not allowed: plain data only "
        "(mappings, lists, strings, numbers, booleans, null)"
    )
