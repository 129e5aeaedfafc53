"""Affected-test selection for a candidate edit.

Per changed file, strongest first:
* a test file (or a new one): its tests                                                  -> level "test-file"
* a source file the coverage map measured in exactly this version, edit inside functions:
  the tests that executed the edited functions (innermost `def` around each changed line) -> level "coverage"
* otherwise (map stale for the file, edit at module level, new function, no test executed the code,
  conftest.py): tests in test files that import the module, directly or through other project modules
                                                                                          -> level "imports"
* nothing importable found / not a Python file                                            -> level "all"
The run's level is the weakest level any file needed ("all" < "imports" < "coverage"/"test-file").
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from greenpatch.verify.covmap import CoverageMap

LEVELS = ("given", "coverage", "test-file", "imports", "all")  # order of increasing breadth


@dataclass
class Selection:
    tests: list[str] = field(default_factory=list)  # node ids or test file paths; empty with level "all"
    level: str = "all"  # "coverage" | "test-file" | "imports" | "all" | "given"
    reasons: dict[str, str] = field(default_factory=dict)  # changed path -> level used for it (and why)


def is_test_file(rel: str) -> bool:
    name = PurePosixPath(rel).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def module_name(rel: str, files: set[str]) -> str:
    """Dotted import name of a project file: its stem under the chain of parent packages (folders with
    __init__.py). `src/pkg/mod.py` -> `pkg.mod`; `tests/test_x.py` (no __init__) -> `test_x`."""
    path = PurePosixPath(rel)
    parts = [] if path.stem == "__init__" else [path.stem]
    parent = path.parent
    while str(parent) not in ("", ".") and f"{parent.as_posix()}/__init__.py" in files:
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts)


def imported_names(text: str, own: str, is_package: bool) -> set[str]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    package = own if is_package else own.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            if base:
                names.add(base)
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if base else alias.name)
    expanded: set[str] = set()
    for name in names:  # importing a.b.c runs a/__init__ and a/b/__init__ too
        parts = name.split(".")
        expanded.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return expanded


def importers(target: str, sources: dict[str, str]) -> set[str]:
    """Project files that import `target` directly or through other project files (reverse transitive closure)."""
    files = set(sources)
    by_name: dict[str, str] = {}
    for rel in files:
        if rel.endswith(".py"):
            name = module_name(rel, files)
            if name:
                by_name.setdefault(name, rel)
    deps: dict[str, set[str]] = {}
    for rel, text in sources.items():
        if rel.endswith(".py"):
            own = module_name(rel, files)
            names = imported_names(text, own, rel.endswith("__init__.py"))
            deps[rel] = {by_name[n] for n in names if n in by_name and by_name[n] != rel}
    reverse: dict[str, set[str]] = {}
    for rel, targets in deps.items():
        for t in targets:
            reverse.setdefault(t, set()).add(rel)
    seen: set[str] = set()
    stack = [target]
    while stack:
        for user in reverse.get(stack.pop(), ()):
            if user not in seen:
                seen.add(user)
                stack.append(user)
    return seen


@dataclass(frozen=True)
class Scope:
    qualname: str
    start: int  # 1-based inclusive, decorators included
    end: int


def scopes(text: str) -> list[Scope] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    found: list[Scope] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    found.append(Scope(name, start, child.end_lineno or child.lineno))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _innermost(found: list[Scope], line: int) -> Scope | None:
    best = None
    for s in found:
        if s.start <= line <= s.end and (best is None or s.end - s.start < best.end - best.start):
            best = s
    return best


def edited_functions(old: str, new: str) -> list[Scope] | None:
    """Functions of `old` (with their line ranges in `old`) that the edit old -> new changes, or None when some
    change is outside every function or the function is new (module-level code runs at import: not a per-test
    fact the coverage map holds), or either side does not parse."""
    old_scopes, new_scopes = scopes(old), scopes(new)
    if old_scopes is None or new_scopes is None:
        return None
    # Functions are matched old <-> new by qualified name and order among equal names (several nested `def key`
    # in one function are common), so an edit maps to the right one even when line numbers moved.
    def ordinal(found: list[Scope]) -> dict[Scope, tuple[str, int]]:
        seen: dict[str, int] = {}
        out = {}
        for scope in sorted(found, key=lambda s: (s.start, s.end)):
            seen[scope.qualname] = seen.get(scope.qualname, -1) + 1
            out[scope] = (scope.qualname, seen[scope.qualname])
        return out

    old_ids = ordinal(old_scopes)
    old_by_id = {ident: scope for scope, ident in old_ids.items()}
    new_ids = ordinal(new_scopes)
    old_lines, new_lines = old.splitlines(), new.splitlines()
    edited: dict[tuple[int, int], Scope] = {}
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old_touched = range(i1 + 1, i2 + 1) if i2 > i1 else [max(i1, 1)]
        new_touched = range(j1 + 1, j2 + 1) if j2 > j1 else [max(j1, 1)]
        for line in old_touched:
            scope = _innermost(old_scopes, line)
            if scope is None:
                return None
            edited[(scope.start, scope.end)] = scope
        for line in new_touched:
            scope = _innermost(new_scopes, line)
            if scope is None or new_ids[scope] not in old_by_id:
                return None
            match = old_by_id[new_ids[scope]]
            edited[(match.start, match.end)] = match
    return list(edited.values())


def select(
    changes: dict[str, str], *, sources: dict[str, str], cmap: CoverageMap | None,
    test_files: list[str], against_map: bool = False, is_test: Callable[[str], bool] | None = None,
) -> Selection:
    """Which tests can be affected by `changes` (path -> new content), given the workspace's current `sources`
    (path -> content, Python files) and the coverage map (None if none was built).
    against_map: diff each changed file against its version when the map was measured (kept beside the map)
    instead of the workspace's current version: what `greenpatch test --changed` wants for edits already saved.
    is_test: whether a path is a test file (the project's python_files; pytest's default when None)."""
    chosen: set[str] = set()
    reasons: dict[str, str] = {}
    level_rank = 0
    mapped_files = _files_by_test(cmap)
    for rel, new in sorted(changes.items()):
        old = sources.get(rel)
        if against_map and cmap is not None:
            old = cmap.measured_source(rel) or old
        rank, picked, reason = _select_one(rel, old, new, sources, cmap, test_files, mapped_files,
                                           is_test or is_test_file)
        reasons[rel] = reason
        level_rank = max(level_rank, rank)
        if rank == LEVELS.index("all"):
            break
        chosen |= picked
    level = LEVELS[level_rank] if changes else "all"
    if level == "all":
        return Selection([], "all", reasons)
    whole_files = {t for t in chosen if "::" not in t}
    chosen = {t for t in chosen if t in whole_files or t.split("::", 1)[0] not in whole_files}
    return Selection(sorted(chosen), level, reasons)


def _files_by_test(cmap: CoverageMap | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for nodeid in cmap.tests if cmap else ():
        out.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
    return out


def _select_one(
    rel: str, old: str | None, new: str, sources: dict[str, str], cmap: CoverageMap | None, test_files: list[str],
    mapped_files: dict[str, list[str]], is_test: Callable[[str], bool],
) -> tuple[int, set[str], str]:
    rank = LEVELS.index
    if not rel.endswith(".py"):
        return rank("all"), set(), "not a Python file"
    if is_test(rel):
        return rank("test-file"), {rel}, "test file"
    name = PurePosixPath(rel).name
    if name == "conftest.py":
        folder = str(PurePosixPath(rel).parent)
        if folder in ("", "."):
            return rank("all"), set(), "top-level conftest.py"
        picked = {t for t in test_files if t.startswith(folder + "/")}
        return (rank("imports"), picked, "conftest.py: tests below it") if picked else (rank("all"), set(), "")
    if cmap is not None and old is not None and cmap.is_fresh(rel, old):
        functions = edited_functions(old, new)
        if functions:
            picked = cmap.tests_executing(rel, [(f.start, f.end) for f in functions])
            picked = _fresh_nodeids(picked, sources, cmap)
            if picked:
                names = ", ".join(f.qualname for f in functions)
                return rank("coverage"), picked, f"tests that executed {names}"
            reason = "no test executed the edited code"
        else:
            reason = "module-level or new code"
    elif cmap is None:
        reason = "no coverage map"
    else:
        reason = "coverage map is stale for this file"
    users = {u for u in importers(rel, sources) if u in set(test_files)}
    if users:
        return rank("imports"), users, f"{reason}; test files importing it"
    return rank("all"), set(), f"{reason}; no test file imports it"


def _fresh_nodeids(picked: set[str], sources: dict[str, str], cmap: CoverageMap) -> set[str]:
    """Node ids from test files changed since the map was built may not exist any more: run such files whole."""
    out = set()
    for nodeid in picked:
        test_file = nodeid.split("::", 1)[0]
        out.add(nodeid if cmap.is_fresh(test_file, sources.get(test_file)) else test_file)
    return out
