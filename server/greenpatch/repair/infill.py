"""Model candidates by infilling (AlphaRepair-style): mask one suspicious statement and let the model fill the
hole, seeing the code around it (a window of the file: the module's imports, the classes around the function and
the function itself, so a hole in a 4,000-line module costs about the prompt of one in a 40-line module) and the
repo context of repair/prompt_context.py before it."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from greenpatch.engine.base import Engine, FimFormat, Generation

HEAD_LINES = 40  # the module's import lines kept in a hole's window at most
FUNCTION_LINES = 120  # lines of a long function kept around the hole at most


@dataclass
class Hole:
    path: str
    first: int  # 1-based lines replaced
    last: int
    prefix: str
    suffix: str
    indent: str
    size: int = 0  # lines the fill writes; 0: as many as it replaces (an insertion replaces none: last = first - 1)

    @property
    def lines(self) -> int:
        return self.size or self.last - self.first + 1


@dataclass
class Window:
    """The part of a file a hole's prompt shows: kept lines around the hole, 1-based, inclusive."""

    head: list[int] = field(default_factory=list)  # the module's import lines
    classes: list[tuple[int, int]] = field(default_factory=list)  # headers of the classes around the function
    first: int = 1  # the function's lines (decorators included), cut to FUNCTION_LINES around the hole
    last: int = 1


def enclosing(tree: ast.Module, line: int, outermost: bool = False
              ) -> tuple[list[ast.ClassDef], ast.FunctionDef | ast.AsyncFunctionDef | None]:
    """The classes and the innermost function around `line` (with `outermost`, the outermost one: a closure's
    window is the function that defines what it reads)."""
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
            if function is not None and outermost:
                return classes, function
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
    # The outermost function: a nested function (a decorator's wrapper, a closure) reads names its enclosing
    # function binds; without them in view the model cannot write a line that uses them (`bench real`, toolz
    # memoize's wrapper: its window was the wrapper alone, without `cache` and `func`).
    classes, function = enclosing(tree, first, outermost=True)
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


def make_hole(path: str, text: str, first: int, last: int, window: Window | None = None) -> Hole:
    """The hole at lines first..last, its prefix and suffix the whole file or, with a `window`, the part of the
    file around it (prompt_context.hole_window)."""
    lines = text.split("\n")
    line = lines[first - 1]
    indent = line[: len(line) - len(line.lstrip())]
    # The prefix ends at the newline: a prefix ending in spaces tokenizes unlike anything seen in training and
    # derails FIM models; the indentation is put back on the fill.
    if window is not None:
        prefix, suffix = window_text(lines, window, first, last)
    else:
        prefix = "\n".join(lines[: first - 1]) + "\n"
        suffix = "\n" + "\n".join(lines[last:])
    return Hole(path, first, last, prefix, suffix, indent)


def render_context(fim: FimFormat | None, current: str, tests: list[tuple[str, str]], repo: str = "") -> str:
    """The failing tests' files (and what failed) placed before the file being repaired."""
    if fim is not None and fim.file_sep:
        head = f"{fim.repo_name}{repo or 'workspace'}\n" if fim.repo_name else ""
        body = "".join(f"{fim.file_sep}{path}\n{content.rstrip()}\n" for path, content in tests)
        return f"{head}{body}{fim.file_sep}{current}\n"
    return "".join(f"# file: {path}\n{content.rstrip()}\n\n" for path, content in tests)


def fill(engine: Engine, hole: Hole, context: str, *, temperature: float, seed: int, max_tokens: int = 64,
         cancel: object = None, generated: list[Generation] | None = None) -> tuple[list[str], Generation] | None:
    """The new lines for the hole, or None when the fill is unusable (empty, cut off, cancelled). The model's
    generation is appended to `generated`, usable or not (what the model's time went on)."""
    n_lines = hole.lines
    stop = ["\n"] if n_lines == 1 else ["\n\n"]
    gen = engine.infill(hole.prefix, hole.suffix, context=context, max_tokens=max_tokens * n_lines, stop=stop,
                        temperature=temperature, seed=seed, cancel=cancel,  # type: ignore[arg-type]
                        code_first=True)  # an empty fill is unusable: ask for the best one that writes code
    if generated is not None:
        generated.append(gen)
    if gen.stop_reason == "cancelled":
        return None
    text = gen.text
    if not text.strip():
        return None
    text = text.lstrip("\n")
    new_lines = text.split("\n")[:n_lines] if n_lines > 1 else [text.split("\n")[0]]
    new_lines[0] = hole.indent + new_lines[0].lstrip(" \t") if new_lines[0].strip() else new_lines[0]
    return new_lines, gen
