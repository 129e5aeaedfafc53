"""Context for the repair prompts (infill and rewrite): what the function uses from elsewhere, the failing test and
what its failure says, and a window of the file around the hole instead of the whole file.

The window is the module's head (its imports), the classes around the function, and the function itself: a hole in
a 4,000-line module costs about the prompt of one in a 40-line module. Definitions come from the workspace index
(signatures and first lines), in a character budget, sorted the same way every time so that the samples of one
hole share their evaluated prompt.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from greenpatch.context.builder import CHARS_PER_TOKEN, RepoContext
from greenpatch.engine.base import FimFormat
from greenpatch.repair.failure import Definitions, FailureFacts, imported_names, resolve
from greenpatch.verify.types import Frame

HEAD_LINES = 40  # the module's first lines kept (imports, constants) at most
FUNCTION_LINES = 120  # lines of a long function kept around the hole at most
DEFINITION_LINES = 12  # first lines of each definition shown (signature, docstring, start of the body)
CONTEXT_CHARS = int(900 * CHARS_PER_TOKEN)  # repo context for one hole: definitions and the test, ~900 tokens
TEST_CHARS = 1600  # the failing test's part of it at most


@dataclass
class Window:
    """The part of a file a hole's prompt shows: kept lines around the hole, 1-based, inclusive."""

    head: list[int] = field(default_factory=list)  # the module's import lines
    classes: list[tuple[int, int]] = field(default_factory=list)  # headers of the classes around the function
    first: int = 1  # the function's lines (decorators included), cut to FUNCTION_LINES around the hole
    last: int = 1


def _enclosing(tree: ast.Module, line: int) -> tuple[list[ast.ClassDef], ast.FunctionDef | ast.AsyncFunctionDef | None]:
    """The classes and the innermost function around `line`."""
    classes: list[ast.ClassDef] = []
    function: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    body: list[ast.stmt] = tree.body
    while True:
        inside = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                       and _start(n) <= line <= (n.end_lineno or n.lineno)), None)
        if inside is None:
            return classes, function
        if isinstance(inside, ast.ClassDef):
            if function is not None:
                return classes, function  # a class inside a function: the function is the unit
            classes.append(inside)
        else:
            function = inside
        body = inside.body


def _start(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return min([node.lineno] + [d.lineno for d in node.decorator_list])


def _body_start(cls: ast.ClassDef) -> int:
    node = cls.body[0]
    return _start(node) if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) else node.lineno


def _head(tree: ast.Module, before: int) -> list[int]:
    """The module's import lines above line `before` (a long docstring or licence stays out), HEAD_LINES at most."""
    found: list[int] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and (node.end_lineno or node.lineno) < before:
            found += range(node.lineno, (node.end_lineno or node.lineno) + 1)
    return found[:HEAD_LINES]


def hole_window(text: str, first: int, last: int) -> Window | None:
    """The window for a hole at lines first..last, or None where the file does not parse or the hole is not
    inside a function (the whole file is then the prompt, as before)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    classes, function = _enclosing(tree, first)
    if function is None:
        return None
    start, end = _start(function), function.end_lineno or function.lineno
    if end - start + 1 > FUNCTION_LINES:
        # a long function: the signature's lines stay out only past the bound; the hole stays in the middle
        start = max(start, first - FUNCTION_LINES // 2)
        end = min(end, max(last, start + FUNCTION_LINES - 1))
    headers = [(c.lineno, max(c.lineno, _body_start(c) - 1)) for c in classes]
    return Window(_head(tree, start), headers, start, end)


def window_text(lines: list[str], window: Window, first: int, last: int) -> tuple[str, str]:
    """The hole's prefix and suffix within the window (the prefix ends at a newline, as infill.make_hole's)."""
    before: list[str] = [lines[n - 1] for n in window.head]
    for header_first, header_last in window.classes:
        before += ["", ""] if before else []
        before += lines[header_first - 1: header_last]
    if before and not window.classes:
        before += ["", ""]
    before += lines[window.first - 1: first - 1]
    prefix = "\n".join(before) + "\n" if before else ""
    suffix = "\n" + "\n".join(lines[last: window.last]) + "\n"
    return prefix, suffix


# --- what the function uses from elsewhere ---------------------------------------------------------------


def used_definitions(text: str, rel: str, first: int, last: int, index: Definitions | None, root: Path | None,
                     window: Window | None, budget: int) -> list[tuple[str, str]]:
    """(path, first lines of the definition) for the names the function at lines first..last calls or uses as
    attributes, from other modules and from its own module where the window leaves them out; in budget."""
    if index is None:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    _, function = _enclosing(tree, first)
    if function is None:
        return []
    imports = imported_names(tree, rel)
    module = ".".join(Path(rel).with_suffix("").parts)
    names: dict[str, None] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if dotted:
                names[dotted] = None
        elif isinstance(node, ast.Name) and node.id in imports:
            names[node.id] = None
    shown = set(range(window.first, window.last + 1)) if window else set()
    out: list[tuple[str, str]] = []
    used = 0
    seen: set[tuple[str, int]] = set()
    for name in names:
        symbol = resolve(name, imports, index, root, module=module)
        if symbol is None:
            continue
        path = _relative(Path(symbol.path), root)
        key = (path, symbol.start_line)
        if key in seen or (path == rel and (symbol.start_line + 1 in shown or window is None)):
            continue  # already in the prompt
        seen.add(key)
        snippet = _snippet(Path(symbol.path), symbol.start_line, symbol.end_line, text if path == rel else None)
        if not snippet or used + len(snippet) > budget:
            continue
        used += len(snippet)
        out.append((path, snippet))
    out.sort()
    return out


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _snippet(path: Path, start: int, end: int, text: str | None) -> str:
    if text is None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
    lines = text.split("\n")[start: min(end, start + DEFINITION_LINES - 1) + 1]
    if not lines:
        return ""
    indent = len(lines[0]) - len(lines[0].lstrip())
    body = [line[indent:] if line[:indent].strip() == "" else line for line in lines]
    if end > start + DEFINITION_LINES - 1:
        body.append(" " * 4 + "...")
    return "\n".join(body)


# --- what the failing test says ----------------------------------------------------------------------------


def frames_text(frames: list[Frame], limit: int = 6) -> str:
    return "\n".join(f"{f.path}:{f.line} in {f.function}" for f in frames[-limit:])


def failure_comment(facts: FailureFacts) -> str:
    """The failure as Python comments: what the test got and wanted, and the traceback in the package."""
    lines = [f"# {line}" for line in facts.summary(500).splitlines()]
    if facts.frames:
        lines.append("# raised in:")
        lines += [f"#   {line}" for line in frames_text(facts.frames).splitlines()]
    return "\n".join(lines)


def test_piece(facts: FailureFacts, budget: int = TEST_CHARS) -> tuple[str, str] | None:
    """(test path, the test function followed by its failure as comments), in budget."""
    if not facts.test_source:
        return None
    body = facts.test_source.rstrip()
    comment = failure_comment(facts)
    if len(body) + len(comment) + 1 > budget:
        body = body[: max(0, budget - len(comment) - 5)].rstrip() + "\n..."
    return facts.test_path, f"{body}\n{comment}"


def infill_context(fim: FimFormat | None, rel: str, definitions: list[tuple[str, str]],
                   facts: FailureFacts | None, repo: str = "", with_test: bool = True) -> str:
    """The repo context placed before the hole's file: definitions it uses, then the failing test."""
    files: list[tuple[str, str]] = []
    merged: dict[str, list[str]] = {}
    for path, snippet in definitions:
        merged.setdefault(path, []).append(snippet)
    files = [(path, "\n\n".join(snippets)) for path, snippets in merged.items()]
    if with_test and facts is not None:
        piece = test_piece(facts)
        if piece is not None:
            files.append(piece)
    if not files:
        return ""
    return RepoContext(files).render(fim, rel, repo)


def rewrite_context(definitions: list[tuple[str, str]]) -> str:
    """The definitions block of the rewrite prompt ("" when there are none)."""
    if not definitions:
        return ""
    body = "\n\n".join(f"# {path}\n{snippet}" for path, snippet in definitions)
    return f"It uses these definitions from the package:\n\n```python\n{body}\n```\n\n"
