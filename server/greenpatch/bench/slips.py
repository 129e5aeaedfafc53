"""Ordinary human slips, one line each, for `greenpatch bench real` (pure: no files, no processes).

A slip is what a person types by mistake: an off-by-one (`<` for `<=`, a `+ 1` dropped or added, a range bound), the
wrong variable (another local of the same function), a dropped `not`, a dropped statement, two call arguments
swapped, a wrong constant or string. Each is found with `ast` inside a function body and applied as a change to the
text of ONE line (or that line deleted), so the rest of the file stays byte-identical and the diff is what a
reviewer would see in a real bug. `draw` orders the candidates for a seed: kinds in turn, one slip per function
first, so ten slips are ten different functions and every kind shows up.
"""

from __future__ import annotations

import ast
import itertools
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("off-by-one", "wrong-variable", "dropped-not", "dropped-statement", "swapped-arguments", "wrong-constant")

# function name chain (enclosing classes and functions, then the function) -> whether tests reach it
Covered = Callable[[tuple[str, ...]], bool]

_BOUND_OP = re.compile(r"<=|>=|<|>")
_FLIP_BOUND = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_NOT_OP = re.compile(r"\bnot\s+in\b|\bis\s+not\b")
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_SELF = {"self", "cls"}


class SlipError(ValueError):
    """The slip does not fit the text it is applied to (the line is not what it was when the slip was found)."""


@dataclass(frozen=True)
class Slip:
    path: str  # workspace-relative POSIX path
    function: str  # dotted: Class.method, or outer.inner
    kind: str  # one of KINDS
    line: int  # 1-based
    old: str  # the line as it was, without its line ending
    new: str | None  # the line as the slip leaves it; None: the line is deleted

    def apply(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        if not 0 < self.line <= len(lines):
            raise SlipError(f"{self.path}:{self.line}: no such line")
        line = lines[self.line - 1]
        body = line.rstrip("\r\n")
        if body != self.old:
            raise SlipError(f"{self.path}:{self.line}: the line changed since the slip was drawn")
        lines[self.line - 1] = "" if self.new is None else self.new + line[len(body):]
        return "".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Slip:
        return cls(str(data["path"]), str(data["function"]), str(data["kind"]), int(data["line"]), str(data["old"]),
                   None if data.get("new") is None else str(data["new"]))


def named_in(words: set[str]) -> Covered:
    """A coverage guess from the tests' text: a function the tests name (or whose class or outer function they
    name, for dunder methods and nested helpers) is reached by them. Cheap, and right far more often than not;
    `greenpatch bench real` still runs the tests to keep only slips that make one fail."""

    def covered(chain: tuple[str, ...]) -> bool:
        name = chain[-1]
        if name in words:
            return True
        if name.startswith("__") and len(chain) > 1 and chain[-2] in words:
            return True
        return any(outer in words for outer in chain[:-1])

    return covered


def slips_in(path: str, text: str, covered: Covered | None = None) -> list[Slip]:
    """Every slip of every kind in the functions of `text` (those `covered` accepts), in source order.

    Slips are built by construction and not re-parsed here (a big module has thousands); `parses` checks one."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines()
    found: list[Slip] = []
    for chain, fn in _functions(tree):
        if covered is not None and not covered(chain):
            continue
        finder = _Finder(path, ".".join(chain), lines)
        finder.scan(fn)
        found.extend(finder.found)
    return found


def parses(slip: Slip, text: str) -> bool:
    try:
        ast.parse(slip.apply(text))
    except (SyntaxError, ValueError):
        return False
    return True


def draw(slips: list[Slip], seed: int) -> list[Slip]:
    """The order to try `slips` in for `seed`: kinds in turn, each function once before any function twice."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Slip]] = {kind: [s for s in slips if s.kind == kind] for kind in KINDS}
    for group in by_kind.values():
        rng.shuffle(group)
    kinds = [k for k in KINDS if by_kind[k]]
    rng.shuffle(kinds)
    order: list[Slip] = []
    used: set[tuple[str, str]] = set()
    progress = True
    while progress:
        progress = False
        for kind in kinds:
            group = by_kind[kind]
            pick = next((s for s in group if (s.path, s.function) not in used), None)
            if pick is None:
                continue
            group.remove(pick)
            used.add((pick.path, pick.function))
            order.append(pick)
            progress = True
    leftovers = [s for kind in kinds for s in by_kind[kind]]
    rng.shuffle(leftovers)
    return order + leftovers


# --- finding them --------------------------------------------------------------------------------------------


def _functions(tree: ast.AST) -> Iterator[tuple[tuple[str, ...], ast.FunctionDef | ast.AsyncFunctionDef]]:
    def visit(node: ast.AST, chain: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield chain + (child.name,), child
                yield from visit(child, chain + (child.name,))
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, chain + (child.name,))
            else:
                yield from visit(child, chain)

    yield from visit(tree, ())


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """The nodes of fn's body, not those of functions, classes or lambdas nested in it (their own slips)."""
    stack = list(reversed(getattr(fn, "body", [])))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _one_line(node: ast.AST) -> bool:
    return getattr(node, "end_lineno", None) == getattr(node, "lineno", -1) and hasattr(node, "end_col_offset")


def _col(line: str, offset: int) -> int:
    """ast's column offsets count UTF-8 bytes; str indexes count characters."""
    return len(line.encode("utf-8")[:offset].decode("utf-8", "replace"))


class _Finder:
    def __init__(self, path: str, function: str, lines: list[str]) -> None:
        self.path, self.function, self.lines = path, function, lines
        self.found: list[Slip] = []

    def span(self, node: ast.AST) -> tuple[int, int]:
        line = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        return _col(line, node.col_offset), _col(line, node.end_col_offset)  # type: ignore[attr-defined]

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.lines[node.lineno - 1][start:end]  # type: ignore[attr-defined]

    def add(self, kind: str, lineno: int, start: int, end: int, replacement: str) -> None:
        old = self.lines[lineno - 1]
        new = old[:start] + replacement + old[end:]
        if new != old:
            self.found.append(Slip(self.path, self.function, kind, lineno, old, new))

    def replace(self, kind: str, node: ast.AST, replacement: str) -> None:
        start, end = self.span(node)
        self.add(kind, node.lineno, start, end, replacement)  # type: ignore[attr-defined]

    def scan(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        nodes = list(_own_nodes(fn))
        docstring = fn.body[0] if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(
            getattr(fn.body[0], "value", None), ast.Constant) else None
        skip = {id(n) for n in ast.walk(docstring)} if docstring is not None else set()
        skip |= {id(v) for n in nodes if isinstance(n, ast.JoinedStr) for v in ast.walk(n)}  # f-string parts
        skip |= {id(n) for n in nodes if isinstance(n, ast.Expr) for n in ast.walk(n)
                 if isinstance(n, ast.Constant) and isinstance(n.value, str)}  # bare strings: more docstrings
        for node in nodes:
            if id(node) in skip or not _one_line(node):
                continue
            if isinstance(node, ast.Compare):
                self._compare(node)
            elif isinstance(node, ast.BinOp):
                self._plus_one_dropped(node)
            elif isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Subscript):
                self._index_plus_one(node)
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                self.replace("dropped-not", node, self.text(node.operand))
            elif isinstance(node, ast.Constant):
                self._constant(node)
        self._wrong_variables(fn, nodes, skip)
        self._dropped_statements(fn)

    def _between(self, left: ast.AST, right: ast.AST) -> tuple[int, int] | None:
        if not (_one_line(left) and _one_line(right)) or left.lineno != right.lineno:  # type: ignore[attr-defined]
            return None
        return self.span(left)[1], self.span(right)[0]

    def _compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1:
            return
        gap = self._between(node.left, node.comparators[0])
        if gap is None:
            return
        start, end = gap
        between = self.lines[node.lineno - 1][start:end]
        if isinstance(node.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
            ops = list(_BOUND_OP.finditer(between))
            if len(ops) == 1:
                op = ops[0]
                self.add("off-by-one", node.lineno, start + op.start(), start + op.end(), _FLIP_BOUND[op.group()])
        elif isinstance(node.ops[0], (ast.NotIn, ast.IsNot)):
            match = _NOT_OP.search(between)
            if match:
                kept = "in" if match.group().startswith("not") else "is"
                self.add("dropped-not", node.lineno, start + match.start(), start + match.end(), kept)

    def _plus_one_dropped(self, node: ast.BinOp) -> None:
        if (isinstance(node.op, (ast.Add, ast.Sub)) and isinstance(node.right, ast.Constant)
                and node.right.value == 1 and not isinstance(node.right.value, bool) and _one_line(node.left)):
            self.replace("off-by-one", node, self.text(node.left))

    def _call(self, node: ast.Call) -> None:
        args = node.args
        if isinstance(node.func, ast.Name) and node.func.id == "range" and 1 <= len(args) <= 2:
            stop = args[-1]
            if _one_line(stop) and not (isinstance(stop, ast.BinOp) and isinstance(stop.right, ast.Constant)):
                self.replace("off-by-one", stop, f"{self.text(stop)} + 1")
        for first, second in itertools.pairwise(args):
            if isinstance(first, ast.Starred) or isinstance(second, ast.Starred):
                continue
            gap = self._between(first, second)
            if gap is None:
                continue
            a, b = self.text(first), self.text(second)
            if a != b:
                line = self.lines[first.lineno - 1]
                self.add("swapped-arguments", first.lineno, self.span(first)[0], self.span(second)[1],
                         b + line[gap[0]:gap[1]] + a)

    def _index_plus_one(self, node: ast.Subscript) -> None:
        index = node.slice
        if isinstance(index, (ast.Name, ast.Constant)) and _one_line(index) and isinstance(node.ctx, ast.Load):
            if isinstance(index, ast.Constant) and (not isinstance(index.value, int) or isinstance(index.value, bool)):
                return
            self.replace("off-by-one", index, f"{self.text(index)} + 1")

    def _constant(self, node: ast.Constant) -> None:
        value, text = node.value, self.text(node)
        if isinstance(value, bool):
            self.replace("wrong-constant", node, str(not value))
        elif isinstance(value, int) and text == str(value):
            self.replace("wrong-constant", node, {0: "1", 1: "0"}.get(value, str(value + 1)))
        elif (isinstance(value, str) and value and text[:1] in "'\"" and text[:3] not in ("'''", '"""')
              and "\\" not in text and len(text) >= 3):
            self.replace("wrong-constant", node, text[:-2] + text[-1])  # a character short: a typo

    def _wrong_variables(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, nodes: list[ast.AST], skip: set[int]) -> None:
        a = fn.args
        params = [p.arg for p in [*getattr(a, "posonlyargs", []), *a.args, *a.kwonlyargs] + [a.vararg, a.kwarg]
                  if p is not None]
        bound: dict[str, int] = {p: fn.lineno for p in params}  # name -> first line it is bound on
        in_comprehension = {id(n) for c in nodes if isinstance(c, ast.comprehension) for n in ast.walk(c.target)}
        for node in nodes:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and id(node) not in in_comprehension:
                bound.setdefault(node.id, node.lineno)
        locals_ = {name for name in bound if name not in _SELF}
        for node in nodes:
            if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)) or id(node) in skip:
                continue
            if node.id not in locals_ or not _one_line(node):
                continue
            for other in sorted(locals_ - {node.id}):
                if bound[other] < node.lineno:  # only names already bound there: a slip, not a NameError
                    self.replace("wrong-variable", node, other)

    def _dropped_statements(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for block in _blocks(fn):
            if len(block) < 2:
                continue  # deleting the only statement would leave an empty block: not one line's change
            for stmt in block:
                if not _one_line(stmt):
                    continue
                if not isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)):
                    continue
                if isinstance(stmt, ast.Expr) and not isinstance(stmt.value, ast.Call):
                    continue  # docstrings and bare names
                line = self.lines[stmt.lineno - 1]
                code = line.split("#", 1)[0].strip() if "#" in line and "'" not in line and '"' not in line \
                    else line.strip()
                if code != self.text(stmt).strip():
                    continue  # shares its line with another statement (`a = 1; b = 2`)
                self.found.append(Slip(self.path, self.function, "dropped-statement", stmt.lineno, line, None))


def _blocks(fn: ast.AST) -> Iterator[list[ast.stmt]]:
    stack: list[ast.AST] = [fn]
    first = True
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES) and not first:
            continue
        first = False
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block
                stack.extend(block)
        for handler in getattr(node, "handlers", []) or []:
            yield handler.body
            stack.extend(handler.body)
        for case in getattr(node, "cases", []) or []:
            yield case.body
            stack.extend(case.body)
