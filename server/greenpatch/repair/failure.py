"""What a failed test tells about the bug: the traceback's frames through the project's modules, the assertion's
actual and expected values, the test function's body and the calls it makes into the package.

Built from a TestResult (the plugin's report: message, frames, the failed comparison) and the test file's text;
calls are resolved to their definitions with the workspace index (workspace/index.py). Localization
(repair/localize.py), the repair prompts (repair/prompt_context.py) and candidate generators read it.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from greenpatch.repair.paths import is_test_path
from greenpatch.verify.types import Frame, TestResult
from greenpatch.workspace.index import WorkspaceIndex

MAX_CALLS = 12  # calls of one test resolved (a long test's later calls rarely lead to the bug)
_OPS = ("==", "!=", "<=", ">=", "<", ">", "not in", "in", "is not", "is")
_ASSERT = re.compile(r"^(?:AssertionError: )?assert (.*)$")
_UNITTEST = re.compile(r"^AssertionError: (?:\w+ differ: )?(.* != .*)$")  # assertEqual: `first != second`
_SHORTENED = re.compile(r"\[\d+ chars\]")
_EQUAL_METHODS = frozenset({"assertEqual", "assertEquals", "assertListEqual", "assertTupleEqual", "assertDictEqual",
                            "assertSetEqual", "assertSequenceEqual", "assertMultiLineEqual", "assertAlmostEqual"})
_WHERE = re.compile(r"^\s*\+\s+where (.+?) = (.+)$")
_DIFF = re.compile(r"^\s{0,4}([-+]) (.*)$")
_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failed|Timeout)\b|Failed)")


class Definition(Protocol):
    """A symbol of the workspace index (workspace/index.Symbol)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def start_line(self) -> int: ...  # 0-based
    @property
    def end_line(self) -> int: ...  # 0-based, inclusive
    @property
    def container(self) -> str: ...


class Definitions(Protocol):
    """What resolving a call needs of the workspace index."""

    def lookup(self, name: str) -> Sequence[Definition]: ...


@dataclass(frozen=True)
class Call:
    """A call the test makes, with the definition it reaches in the package (None where the index has none)."""

    text: str  # the callee as written: "f", "core.f", "inv.take"
    line: int  # 1-based line in the test file
    path: str | None = None  # workspace-relative POSIX path of the definition
    function: str | None = None  # qualified within that file: "take", "Inventory.take" (a class: its __init__)
    first: int = 0  # 1-based lines of the definition
    last: int = 0


@dataclass
class FailureFacts:
    """One failing test, read for repair."""

    nodeid: str
    message: str
    error: str = ""  # exception type as reported ("AssertionError", "KeyError", "Failed"); "" when not known
    frames: list[Frame] = field(default_factory=list)  # in the package (not tests), innermost last
    test_frame: Frame | None = None  # the test's own line that failed
    op: str | None = None  # the failed comparison's operator ("==", "in", ...), None when no comparison
    # The failed comparison's sides as Python source (reprs, bounded): what the code gave, what the test wanted.
    # The side the test computes is the actual one; a literal, or the right side when both are computed, expected.
    actual: str | None = None
    expected: str | None = None
    where: list[tuple[str, str]] = field(default_factory=list)  # pytest's `where VALUE = EXPR` explanations
    test_path: str = ""
    test_source: str = ""  # the test function's text ("" when not found)
    test_first: int = 0  # 1-based line of the test function's `def`
    calls: list[Call] = field(default_factory=list)  # calls in the test body that reach the package, in order

    @property
    def assertion_only(self) -> bool:
        """Failed in the test's own `assert` with no frame in the package: the traceback says nothing of where."""
        return not self.frames and self.error in ("AssertionError", "")

    def summary(self, limit: int = 600) -> str:
        """The failure in a few lines for a prompt: error, actual vs expected, and pytest's explanation."""
        lines = [line for line in self.message.splitlines() if line.strip()][:12]
        if self.actual is not None and self.expected is not None:
            lines.append(f"actual: {self.actual}\nexpected: {self.expected}")
        text = "\n".join(lines)
        return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(result: TestResult, test_text: str, index: Definitions | None = None,
             root: Path | None = None) -> FailureFacts:
    """Read one failed TestResult. `test_text` is the test file's text ("" if unknown); `index` resolves calls
    (paths of its symbols relative to `root`)."""
    test_path = result.nodeid.split("::", 1)[0]
    facts = FailureFacts(result.nodeid, result.message, error=_error_type(result.message, result.compared))
    facts.test_path = test_path
    facts.frames = [f for f in result.frames if f.path != test_path and not is_test_path(f.path)]
    tests = [f for f in result.frames if f.path == test_path]
    facts.test_frame = tests[-1] if tests else None
    facts.where = _where(result.message)
    tree = _parse(test_text)
    node = _test_node(tree, result.nodeid) if tree is not None else None
    if node is not None:
        facts.test_first = node.lineno
        facts.test_source = source_segment(test_text, node)
    _read_comparison(facts, result, test_text, node)
    if node is not None and tree is not None:
        imports = imported_names(tree, test_path)
        facts.calls = resolve_calls(node, imports, index, root, exclude=test_path)
    return facts


# --- the assertion -----------------------------------------------------------------------------------------


def _error_type(message: str, compared: tuple[str, str, str] | None) -> str:
    if compared is not None:
        return "AssertionError"
    first = message.lstrip().split("\n", 1)[0]
    if first.startswith("assert "):
        return "AssertionError"  # pytest 8+ leaves the type out of a rewritten assert's message
    match = _ERROR.match(first)
    return match.group(1).rsplit(".", 1)[-1] if match else ""


def _where(message: str) -> list[tuple[str, str]]:
    out = []
    for line in message.splitlines():
        match = _WHERE.match(line)
        if match:
            out.append((match.group(1).strip(), match.group(2).strip()))
    return out


def _split_comparison(text: str) -> tuple[str, str, str] | None:
    """`3 == 4` -> ("==", "3", "4"): pytest's text of a failed comparison, split at its operator (the first one
    outside brackets and quotes, so `'a == b' == 'c'` splits right)."""
    depth = 0
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch == " ":
            for op in _OPS:
                if text.startswith(f" {op} ", i):
                    return op, text[:i].strip(), text[i + len(op) + 2:].strip()
        i += 1
    return None


def _literal(source: str) -> bool:
    try:
        ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _read_comparison(facts: FailureFacts, result: TestResult, test_text: str, node: ast.AST | None) -> None:
    compared = result.compared
    if compared is None:
        for line in result.message.splitlines():
            match = _ASSERT.match(line.strip())
            if match:
                compared = _split_comparison(match.group(1))
                break
        else:
            first = result.message.strip().split("\n", 1)[0]
            unittest = _UNITTEST.match(first)
            if unittest:
                compared = _split_comparison(unittest.group(1))
                if compared is not None:
                    compared = ("==", compared[1], compared[2])
                if compared and _SHORTENED.search(unittest.group(1)):
                    facts.op = compared[0]
                    return  # unittest cut the values short (`[50 chars]`): no values rather than wrong ones
    if compared is None:
        return
    op, left, right = compared
    left, right = _full_strings(result.message, left, right)
    facts.op = op
    swap = False
    test_assert = _assert_at(node, facts.test_frame.line if facts.test_frame else 0)
    if test_assert is not None:
        # The side written as a literal in the test is what it expects; the other side is computed.
        left_src, right_src = (source_segment(test_text, side) for side in test_assert)
        swap = _literal(left_src) and not _literal(right_src)
    elif facts.where:
        # No source: the side pytest explains with `where VALUE = call(...)` is the computed one.
        explained = {value for value, _ in facts.where}
        swap = right in explained and left not in explained
    facts.actual, facts.expected = (right, left) if swap else (left, right)


def _assert_at(node: ast.AST | None, line: int) -> tuple[ast.expr, ast.expr] | None:
    """The two sides of the comparison in the test's `assert` (or unittest `self.assertEqual(a, b)`) at `line`
    (any line of it)."""
    if node is None or not line:
        return None
    for stmt in ast.walk(node):
        if not isinstance(stmt, (ast.Assert, ast.Expr)) or not stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
            continue
        if isinstance(stmt, ast.Assert):
            test = stmt.test
            if isinstance(test, ast.Compare) and len(test.ops) == 1:
                return test.left, test.comparators[0]
        elif (isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute)
              and stmt.value.func.attr in _EQUAL_METHODS and len(stmt.value.args) >= 2):
            return stmt.value.args[0], stmt.value.args[1]
    return None


def _full_strings(message: str, left: str, right: str) -> tuple[str, str]:
    """Strings pytest shortened to `'abc...xyz'` in the assert line, whole again from its one-line diff
    (`- expected` / `+ actual`, pytest 5.4+), where the diff has exactly one line of each and skipped nothing.
    Only for reports without the plugin's comparison (which has the values themselves)."""
    if "..." not in left and "..." not in right or "Skipping " in message:
        return left, right
    minus = [m.group(2) for line in message.splitlines() if (m := _DIFF.match(line)) and m.group(1) == "-"]
    plus = [m.group(2) for line in message.splitlines() if (m := _DIFF.match(line)) and m.group(1) == "+"]
    if len(minus) == 1 and len(plus) == 1 and left[:1] in "'\"" and right[:1] in "'\"":
        return repr(plus[0]), repr(minus[0])
    return left, right


# --- the test and its calls ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _parse(text: str) -> ast.Module | None:
    """The module's tree, shared (never to be changed): many failing tests of one test file read it (python-
    dateutil: 343 of one 5,000-line file, parsed once each, took a minute)."""
    if not text:
        return None
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


@functools.lru_cache(maxsize=16)
def _lines(text: str) -> list[str]:
    return re.split(r"(?<=\r\n)|(?<=\n)|(?<=\r)(?!\n)", text)


def source_segment(text: str, node: ast.AST) -> str:
    """ast.get_source_segment, with the text's lines split once per text, not once per call."""
    first, last = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    start, end = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
    if first is None or last is None or start is None or end is None:
        return ""
    first, last = int(first) - 1, int(last) - 1
    start, end = int(start), int(end)
    lines = _lines(text)
    if last >= len(lines):
        return ""
    if first == last:
        return lines[first].encode()[start:end].decode()
    head = lines[first].encode()[start:].decode()
    tail = lines[last].encode()[:end].decode()
    return head + "".join(lines[first + 1: last]) + tail


def _test_node(tree: ast.Module, nodeid: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The test function a node id names: `file::Class::test[param]` (classes nested or not)."""
    parts = [p.split("[", 1)[0] for p in nodeid.split("::")[1:]]
    if not parts:
        return None
    scope: list[ast.stmt] = tree.body
    for part in parts[:-1]:
        cls = next((n for n in scope if isinstance(n, ast.ClassDef) and n.name == part), None)
        if cls is None:
            break
        scope = cls.body
    for n in scope:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == parts[-1]:
            return n
    for other in ast.walk(tree):  # a test defined elsewhere (a base class, a module-level alias)
        if isinstance(other, (ast.FunctionDef, ast.AsyncFunctionDef)) and other.name == parts[-1]:
            return other
    return None


@functools.lru_cache(maxsize=64)
def imported_names(tree: ast.Module, rel: str = "") -> dict[str, tuple[str, str]]:
    """Local name -> (module, name in it) for `from m import n as local`; (module, "") for `import m as local`.
    Relative imports are made absolute from `rel`, the importing file's workspace-relative path."""
    found: dict[str, tuple[str, str]] = {}
    package = list(PurePosixPath(rel).parent.parts) if rel else []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if not rel or node.level - 1 > len(package):
                    continue
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module:
                continue
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = (module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = (alias.name, "")
                else:
                    found[alias.name.split(".")[0]] = (alias.name.split(".")[0], "")
    return found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else f"?.{node.attr}"
    return None


def _module_of(rel: str) -> str:
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _qualified(symbol: Definition) -> str:
    return f"{symbol.container}.{symbol.name}" if symbol.container else symbol.name


def _relative(path: Path, root: Path | None) -> str | None:
    if root is None:
        return path.as_posix()
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def resolve(text: str, imports: dict[str, tuple[str, str]], index: Definitions | None, root: Path | None,
            exclude: str = "", module: str = "") -> Definition | None:
    """The definition a callee written as `text` reaches, or None (builtins, other packages, not indexed).

    `imports` are the calling file's imports; `module` its own dotted name (its own functions come first)."""
    if index is None:
        return None
    parts = text.split(".")
    name = parts[-1]
    if name.startswith("__") and name != "__init__":
        return None
    wanted_modules: list[str] = []
    head = imports.get(parts[0])
    if head is not None:
        mod, attr = head
        if len(parts) == 1:
            wanted_modules = [mod]  # from m import f; f()
            name = attr or name
        else:
            # import m.sub as s; s.f()  /  from m import sub; sub.f()  /  from m import Cls; Cls.f()
            dotted = ".".join([mod, attr, *parts[1:-1]] if attr else [mod, *parts[1:-1]])
            wanted_modules = [dotted, dotted.rsplit(".", 1)[0]]
    elif len(parts) == 1:
        wanted_modules = [module] if module else []
    try:
        found = index.lookup(name)
    except Exception:  # noqa: BLE001 - the index is optional help; a failing lookup resolves nothing
        return None
    scored: list[tuple[int, Definition]] = []
    for symbol in found:
        rel = _relative(Path(symbol.path), root)
        if rel is None or rel == exclude or is_test_path(rel) or not rel.endswith(".py"):
            continue
        mod = _module_of(rel)
        if wanted_modules and any(mod == w or mod.endswith("." + w) or w.endswith("." + mod) for w in wanted_modules):
            rank = 0
        elif wanted_modules and any(f".{w.split('.')[0]}." in f".{mod}." for w in wanted_modules):
            rank = 1  # the same package: a name re-exported by its __init__
        elif head is None and len(parts) > 1:
            rank = 2  # obj.method(): any method of that name in the package
        else:
            continue
        if len(parts) > 1 and head is None and symbol.kind not in ("method", "function"):
            continue
        scored.append((rank, symbol))
    if not scored:
        return None
    scored.sort(key=lambda item: (item[0], str(item[1].path), item[1].start_line))
    best_rank = scored[0][0]
    best = [s for r, s in scored if r == best_rank]
    if best_rank == 2 and len(best) > 2:
        return None  # `x.get()` with many `get` methods in the package: no telling which
    return best[0]


def _class_init(symbol: Definition, index: Definitions) -> Definition:
    """A class called is its __init__ where it has one in the same file."""
    try:
        inits = index.lookup("__init__")
    except Exception:  # noqa: BLE001 - the index is optional help
        return symbol
    for init in inits:
        if init.path == symbol.path and init.container == symbol.name:
            return init
    return symbol


def resolve_calls(node: ast.AST, imports: dict[str, tuple[str, str]], index: Definitions | None,
                  root: Path | None, exclude: str = "", module: str = "", limit: int = MAX_CALLS) -> list[Call]:
    """The calls inside `node` that reach the package, in source order, each definition once."""
    calls = sorted((n for n in ast.walk(node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    out: list[Call] = []
    seen: set[tuple[str, int]] = set()
    for call in calls:
        text = _dotted(call.func)
        if not text:
            continue
        symbol = resolve(text, imports, index, root, exclude, module)
        if symbol is None:
            continue
        if symbol.kind == "class" and index is not None:
            symbol = _class_init(symbol, index)
        rel = _relative(Path(symbol.path), root) or ""
        key = (rel, symbol.start_line)
        if key in seen:
            continue
        seen.add(key)
        function = _qualified(symbol) if symbol.kind != "class" else symbol.name
        out.append(Call(text, call.lineno, rel, function, symbol.start_line + 1, symbol.end_line + 1))
        if len(out) >= limit:
            break
    return out


def callees(calls: Iterable[Call], text_of: Callable[[str], str], index: Definitions | None, root: Path | None,
            limit: int = MAX_CALLS) -> list[Call]:
    """What the functions in `calls` call in turn (one level), resolved the same way: where an assertion-only
    failure's bug often is when the test's own call is a thin wrapper."""
    out: list[Call] = []
    seen = {(c.path, c.first) for c in calls}
    trees: dict[str, ast.Module | None] = {}
    for call in calls:
        if not call.path or not call.first:
            continue
        if call.path not in trees:
            trees[call.path] = _parse(text_of(call.path))
        tree = trees[call.path]
        if tree is None:
            continue
        node = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.lineno == call.first), None)
        if node is None:
            continue
        imports = imported_names(tree, call.path)
        for found in resolve_calls(node, imports, index, root, module=_module_of(call.path), limit=limit):
            if (found.path, found.first) not in seen:
                seen.add((found.path, found.first))
                out.append(found)
            if len(out) >= limit:
                return out
    return out



def reached(facts: FailureFacts, text_of: Callable[[str], str], index: Definitions | None,
            root: Path | None) -> list[tuple[Call, int]]:
    """The functions a failing test reaches with their depth: 0 called by the test, 1 called by those (what
    localize.localize takes as `reached`)."""
    return [(c, 0) for c in facts.calls] + [(c, 1) for c in callees(facts.calls, text_of, index, root)]


class FailureReader:
    """One repair run's reading of its failures: the workspace index built once (with the run's unsaved changes;
    a few tenths of a second for a library of 60 modules), FailureFacts once per test."""

    def __init__(self, root: Path, text_of: Callable[[str], str], changes: Mapping[str, str]) -> None:
        self.root = root
        self.text_of = text_of  # workspace-relative path -> the run's text of it ("" if unreadable)
        self.changes = changes
        self._index: WorkspaceIndex | None = None
        self._facts: dict[str, FailureFacts] = {}

    @property
    def index(self) -> WorkspaceIndex:
        if self._index is None:
            self._index = WorkspaceIndex(self.root)
            self._index.scan()
            for rel, text in self.changes.items():
                self._index.update_file(self.root / rel, text)
        return self._index

    def facts(self, result: TestResult) -> FailureFacts:
        if result.nodeid not in self._facts:
            test = self.text_of(result.nodeid.split("::", 1)[0])
            self._facts[result.nodeid] = describe(result, test, self.index, self.root)
        return self._facts[result.nodeid]

    def reached(self, result: TestResult) -> list[tuple[Call, int]]:
        return reached(self.facts(result), self.text_of, self.index, self.root)
