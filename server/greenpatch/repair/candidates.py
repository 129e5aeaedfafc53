"""Candidate fixes and the checks every candidate passes before it costs a test run."""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
import hashlib
import importlib.util
import io
import symtable
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from greenpatch.workspace.files import differing_span, split_lines


@dataclass
class Candidate:
    path: str  # workspace-relative file the candidate rewrites
    text: str  # the whole new file
    generator: str  # "mutation" | "infill" | "rewrite"
    line: int  # 1-based line the generator worked on (for titles and ordering)
    description: str = ""  # e.g. "`>` -> `>=`"
    logprob: float | None = None
    prior: float = 0.0  # suspiciousness of the location, higher first
    votes: int = 1  # how many samples (of any generator) produced the same program
    generators: set[str] = field(default_factory=set)
    key: str = ""
    kind: str = ""  # what kind of edit (repair/budget.py's kinds); "" for the generator's own name
    likelihood: float = 0.0  # how likely before any test ran (repair/budget.py): the order tried, a tie-breaker


def normalized(text: str) -> str | None:
    """A formatting- and comment-insensitive key of a module (None when it does not parse)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def digest(text: str) -> str:
    """A short fingerprint of a module's text, whitespace aside (cheap: every candidate made gets one): two
    candidates, or a candidate and a known fix, with equal digests are the same program."""
    return hashlib.sha1("".join(text.split()).encode("utf-8")).hexdigest()[:16]


def imported_modules(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def module_exists(name: str, root: Path) -> bool:
    """Whether `import name` can work in the project: stdlib, a module or package of the project, or installed."""
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        return True
    for base in (root, root / "src"):
        if (base / f"{name}.py").exists() or (base / name).is_dir():
            return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def new_imports_exist(original: str, text: str, root: Path) -> bool:
    """Candidates importing modules that do not exist fail at import time; drop them before running anything."""
    added = imported_modules(text) - imported_modules(original)
    return all(module_exists(name, root) for name in added)


_JUMPS = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def unreachable_statements(text: str) -> int:
    """Statements that follow a return, raise, continue or break in their block: code that can never run."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return 0
    count = 0
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if not isinstance(block, list):
                continue
            for i, stmt in enumerate(block[:-1]):
                if isinstance(stmt, _JUMPS):
                    count += len(block) - i - 1
                    break
    return count


def adds_dead_code(original: str, text: str) -> bool:
    """The candidate makes code unreachable (a `return` inserted above the line it should have replaced): it can
    pass the tests while it only hides the bug, so it is never tried."""
    return unreachable_statements(text) > unreachable_statements(original)


_MODULE_DUNDERS = {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__",
                   "__path__", "__annotations__", "__dict__", "__cached__"}


@functools.lru_cache(maxsize=16)
def undefined_names(text: str) -> frozenset[str] | None:
    """Names the module reads that nothing binds: not a parameter or local of the scope, of an enclosing one, of
    the module, nor a builtin (None: it does not parse, or a `from m import *` could bind anything)."""
    try:
        top = symtable.symtable(text, "<candidate>", "exec")
    except (SyntaxError, ValueError):
        return None
    if any(s.is_imported() and s.get_name() == "*" for s in top.get_symbols()) or "import *" in text:
        return None
    tables = [top]
    for table in tables:
        tables.extend(table.get_children())
    bound = {s.get_name() for table in tables for s in table.get_symbols()
             if (table is top or s.is_declared_global()) and (s.is_assigned() or s.is_imported() or s.is_namespace())}
    known = bound | _MODULE_DUNDERS | set(dir(builtins))
    return frozenset(s.get_name() for table in tables for s in table.get_symbols()
                     if s.is_referenced() and (table is top or s.is_global()) and s.get_name() not in known)


def adds_undefined_name(original: str, text: str) -> bool:
    """The candidate reads a name nothing binds where the original did not (`if n % j` after the loop that bound
    `j` was replaced): it raises NameError on a path the tests may not take, so it is never tried."""
    before, after = undefined_names(original), undefined_names(text)
    return before is not None and after is not None and bool(after - before)


def _tokens(text: str) -> list[str]:
    try:
        return [
            t.string for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT,
                              tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text.split()


def changed_tokens(original: str, text: str) -> int:
    """Size of the edit in tokens (insertions plus deletions) — the smaller, the more likely right."""
    a, b = _tokens(original), _tokens(text)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def changed_range(original: str, text: str) -> tuple[int, int]:
    """0-based first and last line of `original` that the edit replaces (first == last + 1 never happens: a pure
    insertion reports the line it goes before)."""
    old = original.split("\n")
    start, end_old, _ = differing_span(old, text.split("\n"))
    last = max(start, end_old - 1)
    return min(start, len(old) - 1), min(last, len(old) - 1)


def unified_diff(path: str, original: str, text: str) -> str:
    """The diff `patch` and `git apply` take: lines keep their own endings (\\r\\n in a CRLF file), and only
    real line breaks split lines (str.splitlines would also split at a form feed)."""
    def lines_of(value: str) -> list[str]:
        return [content + ending for content, ending in split_lines(value) if content or ending]

    out = ""
    for line in difflib.unified_diff(lines_of(original), lines_of(text), f"a/{path}", f"b/{path}", n=3):
        if line.endswith("\n"):
            out += line
        elif line.endswith("\r"):  # a CR-only file (classic Mac): one diff line per line still
            out += line + "\n"
        else:
            out += line + "\n\\ No newline at end of file\n"
    return out


def replace_lines(text: str, first: int, last: int, new_lines: list[str]) -> str:
    """Replace 1-based lines first..last (inclusive) of text with new_lines (without newlines)."""
    lines = text.split("\n")
    return "\n".join(lines[: first - 1] + new_lines + lines[last:])
