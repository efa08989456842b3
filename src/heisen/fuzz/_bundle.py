"""`$ref`s into other files of an OpenAPI document, brought into the document itself.

`./schemas/order.yaml#/Order` names a node of another file, relative to the
file that holds the `$ref`. `bundle` copies each such node under one key of
the document, `x-heisen-external` (keyed by `file#pointer`, relative to the
document's folder), and rewrites the `$ref` to point there, so the loader
only ever follows local refs. A local ref inside the other file
(`#/Money`) is a ref into that file, and is bundled the same way; a ref
back into the document becomes local again. Each node is copied once, so
files that refer to each other terminate. URLs (`https://…`) are left as
they are: the loader reports them as unsupported.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote

from heisen._yaml import YamlDocument, YamlPath
from heisen.errors import PipelineError

BUNDLE_KEY = "x-heisen-external"


def bundle(document: YamlDocument, path: Path) -> YamlDocument:
    """The document with every ref into another file made local (itself when there is none)."""
    if not isinstance(document.data, dict):
        return document
    bundler = _Bundler(document, path.resolve())
    data = bundler.walk(document.data, bundler.base, ())
    if not bundler.bundled:
        return document
    return replace(document, data={**data, BUNDLE_KEY: bundler.bundled})


class _Bundler:
    def __init__(self, document: YamlDocument, base: Path) -> None:
        self.document = document
        self.base = base
        self.bundled: dict[str, Any] = {}
        self.files: dict[Path, Any] = {base: document.data}

    def walk(self, node: Any, file: Path, where: YamlPath) -> Any:
        if isinstance(node, list):
            return [self.walk(item, file, (*where, index)) for index, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        copy = {key: self.walk(value, file, (*where, str(key))) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and "://" not in ref and not (file == self.base and ref[:1] == "#"):
            copy["$ref"] = self.local(ref, file, where)
        return copy

    def local(self, ref: str, file: Path, where: YamlPath) -> str:
        """The local ref standing for `ref` (read in `file`), bundling its target on first use."""
        name, _, pointer = ref.partition("#")
        target = (file.parent / unquote(name)).resolve() if name else file
        if target == self.base:
            return f"#{pointer}"
        try:
            shown = target.relative_to(self.base.parent).as_posix()
        except ValueError:
            shown = target.as_posix()
        key = f"{shown}#{pointer}"
        if key not in self.bundled:
            self.bundled[key] = None  # taken: a ref back to it while it is copied ends here
            node = self.resolve(target, pointer, ref, where)
            self.bundled[key] = self.walk(node, target, where)
        return f"#/{BUNDLE_KEY}/{key.replace('~', '~0').replace('/', '~1')}"

    def resolve(self, file: Path, pointer: str, ref: str, where: YamlPath) -> Any:
        if file not in self.files:
            self.files[file] = self.load(file, ref, where)
        node = self.files[file]
        for raw in pointer.split("/")[1:]:
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                self.fail(where, f"$ref {ref!r} does not resolve: no {part!r} in {file}")
        return node

    def load(self, file: Path, ref: str, where: YamlPath) -> Any:
        from heisen._json import load_json_file
        from heisen._yaml import load_yaml_file

        try:
            loaded = (
                load_json_file(file) if file.suffix.lower() == ".json" else load_yaml_file(file)
            )
        except PipelineError as exc:
            reason = "; ".join(problem.message for problem in exc.problems)
            self.fail(where, f"$ref {ref!r}: cannot read {file} ({reason})")
        except OSError as exc:
            self.fail(where, f"$ref {ref!r}: cannot read {file} ({exc.strerror or exc})")
        return loaded.data

    def fail(self, where: YamlPath, message: str) -> NoReturn:
        raise PipelineError(
            self.document.source, [self.document.problem((*where, "$ref"), message)]
        )
