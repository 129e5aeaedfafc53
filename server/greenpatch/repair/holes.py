"""Where the model may write a fix besides one masked statement: a new line inserted at a suspicious point (before
or after a statement, at the start of a block) and two or three consecutive statements masked together.

Pure functions of the file's text: the pipeline turns each hole into a model job (repair/infill.py fills it) and
verifies the result like any other candidate.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from greenpatch.repair.budget import INFILL_LINES, INSERT, decay
from greenpatch.repair.infill import Hole, Window, make_hole, window_text


@dataclass(frozen=True)
class HoleSpec:
    hole: Hole
    kind: str  # repair/budget.py's INSERT or INFILL_LINES
    weight: float  # how likely among the holes at this place
    where: str  # for the candidate's description: "before line 12", "lines 12-13"


def _statement_at(tree: ast.Module, line: int) -> tuple[ast.stmt, list[ast.stmt]] | None:
    """The statement starting at `line` and the body (list of siblings) it is in."""
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if not isinstance(body, list):
                continue
            for stmt in body:
                if isinstance(stmt, ast.stmt) and stmt.lineno == line:
                    return stmt, body
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                for stmt in handler.body:
                    if stmt.lineno == line:
                        return stmt, handler.body
    return None


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def insertion_holes(path: str, text: str, line: int, window: Window | None = None) -> list[HoleSpec]:
    """Holes for one new line at the statement starting at `line`: before it, after it, and at the start of its
    block when it is a compound statement (`if`, `for`, `with`, ...), most likely first. With a `window` (the
    suspect's, prompt_context.hole_window) the prompt shows that part of the file, as the masked line's does: a
    whole 1,000-line module costs ~4,000 prompt tokens, ~45 s on 2 cores (`bench real`, toolz)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    found = _statement_at(tree, line)
    if found is None:
        return []
    stmt, _siblings = found
    lines = text.split("\n")
    indent = indent_of(lines[stmt.lineno - 1])
    out: list[HoleSpec] = []
    body = getattr(stmt, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.stmt) and body[0].lineno > stmt.lineno:
        first = body[0]
        if is_docstring(first) and len(body) > 1:
            first = body[1]
        out.append(HoleSpec(_insert_hole(path, lines, first.lineno, indent_of(lines[first.lineno - 1]), window),
                            INSERT, 1.0, f"at the start of the block of line {line}"))
    out.append(HoleSpec(_insert_hole(path, lines, stmt.lineno, indent, window), INSERT, 0.9, f"before line {line}"))
    end = stmt.end_lineno or stmt.lineno
    if end < len(lines):
        out.append(HoleSpec(_insert_hole(path, lines, end + 1, indent, window), INSERT, 0.7, f"after line {line}"))
    # Two new lines: a dropped `cache[k] = result = f(x)` comes back as `result = f(x)` alone from a one-line hole,
    # the line that keeps the result then missing (`bench real`, toolz memoize).
    out.append(HoleSpec(_insert_hole(path, lines, stmt.lineno, indent, window, size=2), INSERT, 0.5,
                        f"before line {line}"))
    return out


def _covering(window: Window | None, first: int, last: int) -> Window | None:
    """The window stretched to show lines first..last around a hole (a hole at its edge, or past it)."""
    if window is None:
        return None
    return replace(window, first=min(window.first, first), last=max(window.last, last))


def _insert_hole(path: str, lines: list[str], before: int, indent: str, window: Window | None, size: int = 1) -> Hole:
    """A hole of `size` new lines placed before line `before` (1-based): it replaces no line (last = before - 1)."""
    shown = _covering(window, before, before - 1)
    if shown is not None:
        prefix, suffix = window_text(lines, shown, before, before - 1)
    else:
        prefix = "\n".join(lines[: before - 1]) + "\n"
        suffix = "\n" + "\n".join(lines[before - 1:])
    return Hole(path, before, before - 1, prefix, suffix, indent, size=size)


def masked_holes(path: str, text: str, line: int, widths: tuple[int, ...] = (2, 3),
                 window: Window | None = None) -> list[HoleSpec]:
    """Holes masking the statement starting at `line` together with the one or two simple statements after it in
    the same block (a fix that spans lines: a value computed differently and then used differently)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    found = _statement_at(tree, line)
    if found is None:
        return []
    stmt, siblings = found
    index = next(i for i, s in enumerate(siblings) if s is stmt)
    out: list[HoleSpec] = []
    for rank, width in enumerate(widths):
        group = siblings[index: index + width]
        if len(group) < width or any(hasattr(s, "body") for s in group):
            break  # a compound statement brings a whole block: too much for one fill
        last = group[-1].end_lineno or group[-1].lineno
        if last - stmt.lineno + 1 > 2 * width:
            break  # statements spread over many lines: not a small hole
        hole = make_hole(path, text, stmt.lineno, last, _covering(window, stmt.lineno, last))
        out.append(HoleSpec(hole, INFILL_LINES, decay(rank), f"lines {stmt.lineno}-{last}"))
    return out


# NameError's and UnboundLocalError's messages across Python 3.9-3.13
_UNBOUND = re.compile(r"(?:local variable|name|free variable) '(\w+)' (?:referenced before assignment|is not defined"
                      r"|where it is not associated)|cannot access (?:local|free) variable '(\w+)'")


def unbound_names(messages: Iterable[str]) -> set[str]:
    """Names the failures' messages say were read before anything bound them."""
    found: set[str] = set()
    for message in messages:
        for match in _UNBOUND.finditer(message or ""):
            found.add(match.group(1) or match.group(2))
    return found


def reads_any(text: str, line: int, names: set[str]) -> bool:
    """Whether the statement starting at `line` reads one of `names`."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    found = _statement_at(tree, line)
    if found is None:
        return False
    stmt = found[0]
    parts = [stmt] if not hasattr(stmt, "body") else [n for n in ast.iter_child_nodes(stmt) if isinstance(n, ast.expr)]
    return any(isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names
               for part in parts for node in ast.walk(part))
