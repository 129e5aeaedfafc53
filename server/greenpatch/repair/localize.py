"""Where is the bug? Spectrum-based suspiciousness (Ochiai: a line run by the failing tests and rarely by passing
ones is a likely fault), plus the traceback's frames in the package (deepest first), plus the functions the failing
test calls into the package and what those call (repair/failure.py). Suspects are statement lines inside functions.

An assertion-only failure has no frame in the code under test: the test's calls are then what points into the
package, and where no coverage was recorded they are the suspects themselves."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from greenpatch.repair.paths import is_test_path, test_file_of
from greenpatch.verify.types import TestResult

if TYPE_CHECKING:
    from greenpatch.repair.failure import Call

# What the traceback adds to a statement's score: its deepest frame in the package, the next one, any other.
FRAME_WEIGHTS = (0.5, 0.25, 0.15)
# What a failing test's calls add to the statements it ran in the called function (depth 0) and in what that
# calls (depth 1): less than a frame (the exception came from there), enough to lift the test's own entry point
# above helpers that every passing test runs too.
CALL_WEIGHTS = (0.15, 0.08)
# Without coverage, a called function's statements are suspects on their own, at these scores.
CALLED_ALONE = (0.3, 0.2)
NAMED_ALONE = 0.1  # without coverage, a function whose name the test's file or message mentions

Coverage = dict[str, dict[str, set[int]]]  # nodeid -> relpath -> 1-based lines


@dataclass(frozen=True)
class Function:
    name: str  # qualified within the file, e.g. "Inventory.take"
    first: int  # 1-based line of the `def`
    last: int
    body_first: int  # first line after the signature


@dataclass
class Statement:
    first: int  # 1-based span of the statement (for compound statements: the header only)
    last: int
    function: Function


class SourceMap:
    """Functions and statement spans of one parsed file."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.functions: list[Function] = []
        self.statements: dict[int, Statement] = {}  # every line of a statement -> its statement
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            self.ok = False
            return
        self.ok = True
        self._walk(tree, "", None)

    def _walk(self, node: ast.AST, qual: str, function: Function | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body_first = child.body[0].lineno if child.body else child.lineno + 1
                doc = ast.get_docstring(child, clean=False)
                fn = Function(f"{qual}{child.name}", child.lineno, child.end_lineno or child.lineno, body_first)
                self.functions.append(fn)
                body = child.body[1:] if doc is not None and len(child.body) > 1 else child.body
                for stmt in body:
                    self._statement(stmt, fn, f"{qual}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                self._walk(child, f"{qual}{child.name}.", function)

    def _statement(self, stmt: ast.stmt, fn: Function, qual: str) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._walk(ast.Module(body=[stmt], type_ignores=[]), qual, fn)
            return
        bodies = [getattr(stmt, name) for name in ("body", "orelse", "finalbody", "handlers") if getattr(stmt, name, None)]
        if isinstance(stmt, ast.Match):
            bodies = [case.body for case in stmt.cases]
        end = stmt.end_lineno or stmt.lineno
        if bodies:
            first_child = min(b[0].lineno for b in bodies if b and hasattr(b[0], "lineno"))
            end = max(stmt.lineno, first_child - 1)
        span = Statement(stmt.lineno, end, fn)
        for line in range(stmt.lineno, end + 1):
            self.statements.setdefault(line, span)
        for body in bodies:
            for inner in body:
                if isinstance(inner, ast.ExceptHandler):
                    handler = Statement(inner.lineno, inner.lineno, fn)
                    self.statements.setdefault(inner.lineno, handler)
                    for sub in inner.body:
                        self._statement(sub, fn, qual)
                else:
                    self._statement(inner, fn, qual)
        if isinstance(stmt, ast.If) and stmt.orelse and not isinstance(stmt.orelse[0], ast.If):
            pass  # `else:` lines carry no code to change

    def function_at(self, line: int) -> Function | None:
        inside = [f for f in self.functions if f.first <= line <= f.last]
        return min(inside, key=lambda f: f.last - f.first) if inside else None


@dataclass
class Suspect:
    path: str
    line: int  # first line of the statement, 1-based
    last: int
    score: float
    function: Function
    reasons: list[str] = field(default_factory=list)


def _statements_in(sm: SourceMap, first: int, last: int) -> list[Statement]:
    """The statements of the function defined at lines first..last (nested functions' included), once each."""
    found = {id(st): st for line, st in sm.statements.items() if first <= line <= last}
    return sorted(found.values(), key=lambda st: st.first)


def _names_in(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", text))


def localize(
    failing: list[TestResult],
    passing: Iterable[str],
    coverage: Coverage,
    source: Callable[[str], SourceMap | None],
    focus: set[str] | None,
    candidates_files: Iterable[str] = (),
    test_text: Callable[[str], str] = lambda rel: "",
    reached: Mapping[str, Sequence[tuple[Call, int]]] | None = None,
) -> list[Suspect]:
    """Suspicious statements, most suspicious first.

    `source(rel)` gives the parsed file (None when not a repairable Python file); `focus` limits files;
    `candidates_files` are non-test files to consider when coverage says nothing (e.g. coverage.py missing);
    `reached[nodeid]`: the functions a failing test calls, with their depth (0: called by the test itself, 1: called
    by those; failure.callees)."""
    passing = list(passing)
    scores: dict[tuple[str, int], float] = {}
    reasons: dict[tuple[str, int], list[str]] = {}

    def wanted(rel: str) -> bool:
        return rel.endswith(".py") and not is_test_path(rel) and (focus is None or rel in focus)

    def statement(rel: str, line: int) -> tuple[SourceMap, Statement] | None:
        sm = source(rel)
        if sm is None or not sm.ok:
            return None
        st = sm.statements.get(line)
        return (sm, st) if st is not None else None

    n_failed = len(failing)
    ef: dict[tuple[str, int], int] = {}
    for result in failing:
        for rel, lines in coverage.get(result.nodeid, {}).items():
            if wanted(rel):
                for line in lines:
                    found = statement(rel, line)
                    if found:
                        key = (rel, found[1].first)
                        ef[key] = ef.get(key, 0) + 1
    ep: dict[tuple[str, int], int] = {}
    for nodeid in passing:
        for rel, lines in coverage.get(nodeid, {}).items():
            if wanted(rel):
                for line in lines:
                    found = statement(rel, line)
                    if found and (rel, found[1].first) in ef:
                        key = (rel, found[1].first)
                        ep[key] = ep.get(key, 0) + 1
    for key, e_f in ef.items():
        scores[key] = e_f / math.sqrt(n_failed * (e_f + ep.get(key, 0)))
        reasons.setdefault(key, []).append(f"run by {e_f} failing and {ep.get(key, 0)} passing tests")

    # Traceback frames: where an exception came from is often where the bug is, or close.
    for result in failing:
        inner = [f for f in result.frames if wanted(f.path)]
        for depth, frame in enumerate(reversed(inner)):
            found = statement(frame.path, frame.line)
            if found:
                key = (frame.path, found[1].first)
                scores[key] = scores.get(key, 0.0) + FRAME_WEIGHTS[min(depth, len(FRAME_WEIGHTS) - 1)]
                reasons.setdefault(key, []).append("in the traceback")

    # The test's calls into the package: its entry points, and what they call.
    for result in failing:
        ran = coverage.get(result.nodeid)
        for call, depth in (reached or {}).get(result.nodeid, ()):
            if not call.path or not wanted(call.path):
                continue
            sm = source(call.path)
            if sm is None or not sm.ok:
                continue
            ran_here = ran.get(call.path, set()) if ran else None
            depth = min(depth, len(CALL_WEIGHTS) - 1)
            for st in _statements_in(sm, call.first, call.last):
                key = (call.path, st.first)
                if ran_here is not None:
                    if not any(line in ran_here for line in range(st.first, st.last + 1)):
                        continue  # the test's run did not reach it
                    bonus = CALL_WEIGHTS[depth]
                elif key in scores:
                    bonus = CALL_WEIGHTS[depth]
                else:
                    bonus = CALLED_ALONE[depth]  # no coverage for this test: the called code is the suspect
                scores[key] = scores.get(key, 0.0) + bonus
                reasons.setdefault(key, []).append("called by the test" if depth == 0 else
                                                   "called by what the test calls")

    if not ef:
        # No coverage data: every statement of the functions the failing tests name is a (weak) suspect, after
        # the traceback's and the test's calls' (a function reached through a helper of the test's own).
        named: set[str] = set()
        for result in failing:
            named |= _names_in(test_text(test_file_of(result.nodeid)))
            named |= _names_in(result.message)
        for rel in candidates_files:
            if not wanted(rel):
                continue
            sm = source(rel)
            if sm is None or not sm.ok:
                continue
            for st in {id(s): s for s in sm.statements.values()}.values():
                if st.function.name.split(".")[-1] in named and (rel, st.first) not in scores:
                    scores[(rel, st.first)] = NAMED_ALONE
                    reasons.setdefault((rel, st.first), []).append("in a function the test names")

    suspects: list[Suspect] = []
    for (rel, line), score in scores.items():
        found = statement(rel, line)
        if found is None:
            continue
        sm, st = found
        suspects.append(Suspect(rel, st.first, st.last, score, st.function, reasons.get((rel, line), [])))
    # Ties (common: every line of a short function run by one failing test) go to the later line, where the
    # result is computed, as fault-localization studies suggest.
    suspects.sort(key=lambda s: (-round(s.score, 6), -s.line))
    return suspects
