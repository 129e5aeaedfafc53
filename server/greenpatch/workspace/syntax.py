"""Tree-sitter parsing of Python: syntax problems, definitions, imports and calls from `grammars/python/tags.scm`.

Lines are 0-based everywhere in this module; columns are byte offsets within the line's UTF-8 encoding
(`documents.py` converts to LSP's UTF-16 columns).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

import tree_sitter
import tree_sitter_python

from greenpatch.resources import grammars_dir

LANGUAGE = tree_sitter.Language(tree_sitter_python.language())
_local = threading.local()


def _parser() -> tree_sitter.Parser:
    # Parsers keep state between calls, so each thread gets its own.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = tree_sitter.Parser(LANGUAGE)
    return parser


@cache
def query(name: str) -> tree_sitter.Query:
    source = (grammars_dir() / "python" / f"{name}.scm").read_text(encoding="utf-8")
    # Any for mypy under Python 3.10: tree_sitter's stub returns typing.Self (3.11+)
    return tree_sitter.Query(LANGUAGE, source)  # type: ignore[no-any-return, unused-ignore]


def parse(source: str | bytes, old_tree: tree_sitter.Tree | None = None) -> tree_sitter.Tree:
    data = source.encode("utf-8") if isinstance(source, str) else source
    if old_tree is None:
        return _parser().parse(data)
    return _parser().parse(data, old_tree)


def _tree(source: str | bytes | tree_sitter.Tree) -> tree_sitter.Tree:
    return source if isinstance(source, tree_sitter.Tree) else parse(source)


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    col: int
    end_line: int
    end_col: int
    message: str


def _problem_nodes(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    found: list[tree_sitter.Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if not current.has_error and not current.is_missing:
            continue
        if current.is_error or current.is_missing:
            found.append(current)
            if current.is_error:
                continue  # nested errors inside an ERROR node are one problem
        stack.extend(reversed(current.children))
    return found


def syntax_problems(source: str | bytes | tree_sitter.Tree) -> list[SyntaxProblem]:
    tree = _tree(source)
    problems = []
    for node in _problem_nodes(tree.root_node):
        (line, col), (end_line, end_col) = node.start_point, node.end_point
        if node.is_missing:
            message = f"syntax error: missing {node.type!r}"
        else:
            snippet = (node.text or b"").decode("utf-8", "replace").strip().splitlines()
            first = snippet[0][:40] if snippet else ""
            message = f"syntax error: unexpected {first!r}" if first else "syntax error"
        if (end_line, end_col) == (line, col):
            end_col = col + 1
        problems.append(SyntaxProblem(line, col, end_line, end_col, message))
    return problems


def error_count(source: str | bytes | tree_sitter.Tree) -> int:
    tree = _tree(source)
    return len(_problem_nodes(tree.root_node)) if tree.root_node.has_error else 0


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # "function" | "method" | "class" | "constant"
    start_line: int
    end_line: int  # inclusive
    name_line: int = 0
    name_col: int = 0


@dataclass(frozen=True)
class Reference:
    name: str
    kind: str  # "call" | "import"
    line: int
    col: int
    module: str = ""  # for `from module import name`


@dataclass
class Tags:
    definitions: list[Definition]
    references: list[Reference]


def _end_line(node: tree_sitter.Node) -> int:
    line, col = node.end_point
    return line - 1 if col == 0 and line > node.start_point[0] else line


def _is_method(node: tree_sitter.Node) -> bool:
    parent = node.parent
    if parent is not None and parent.type == "decorated_definition":
        parent = parent.parent
    return parent is not None and parent.type == "block" and parent.parent is not None and (
        parent.parent.type == "class_definition"
    )


def tags(source: str | bytes | tree_sitter.Tree) -> Tags:
    tree = _tree(source)
    definitions: list[Definition] = []
    references: list[Reference] = []
    for _, captures in tree_sitter.QueryCursor(query("tags")).matches(tree.root_node):
        names = captures.get("name", [])
        if not names:
            continue
        name_node = names[0]
        name = (name_node.text or b"").decode("utf-8", "replace")
        if not name.strip():
            continue  # error recovery made a nameless node; LSP forbids a symbol with an empty name
        for capture, nodes in captures.items():
            if capture.startswith("definition."):
                node = nodes[0]
                kind = capture.split(".", 1)[1]
                if kind == "function" and _is_method(node):
                    kind = "method"
                definitions.append(
                    Definition(name, kind, node.start_point[0], _end_line(node), *name_node.start_point)
                )
            elif capture.startswith("reference."):
                module_nodes = captures.get("module", [])
                module = (module_nodes[0].text or b"").decode() if module_nodes else ""
                line, col = name_node.start_point
                references.append(Reference(name, capture.split(".", 1)[1], line, col, module))
    definitions.sort(key=lambda d: (d.start_line, d.end_line))
    return Tags(definitions, references)


def definitions(source: str | bytes | tree_sitter.Tree) -> list[Definition]:
    return tags(source).definitions


def enclosing_definition(source: str | bytes | tree_sitter.Tree, line: int) -> Definition | None:
    """The innermost function or method containing `line`, else the innermost class, else None."""
    containing = [d for d in definitions(source) if d.start_line <= line <= d.end_line and d.kind != "constant"]
    functions = [d for d in containing if d.kind in ("function", "method")]
    pool = functions or containing
    return min(pool, key=lambda d: d.end_line - d.start_line) if pool else None


def wants_block(source: str, line: int, col: int) -> bool:
    """Whether the cursor at (line, col) should get a multi-line completion: it sits at the start of an empty body
    (an otherwise blank line right after a line ending in ':')."""
    lines = source.split("\n")
    if line >= len(lines):
        return False
    current = lines[line]
    if current[:col].strip() or current[col:].strip():
        return False
    for previous in reversed(lines[:line]):
        stripped = previous.split("#", 1)[0].rstrip()
        if stripped:
            return stripped.endswith(":")
    return False
