"""Where the repair prompts' context is built: what the model sees besides the code around the hole (infill) or
the function (rewrite). One place, so that what goes in is decided by measurement, for both kinds of prompt.

What there is to give: the definitions the function uses (from the workspace index: signatures and first lines,
from other modules and from its own outside the hole's window), in a character budget, sorted the same way every
time so that the samples of one hole share their evaluated prompt; the failing test and what its failure says
(actual vs expected, the traceback's frames in the package; repair/failure.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

from greenpatch.context.builder import RepoContext
from greenpatch.engine.base import CHARS_PER_TOKEN, ChatMessage, FimFormat
from greenpatch.repair import rewrite
from greenpatch.repair.failure import Definitions, FailureFacts, FailureReader, imported_names, resolve
from greenpatch.repair.files import RunFiles
from greenpatch.repair.group import Group
from greenpatch.repair.holes import HoleSpec, insertion_holes, masked_holes
from greenpatch.repair.infill import Hole, Window, enclosing, hole_window, make_hole
from greenpatch.repair.localize import Suspect
from greenpatch.repair.paths import test_file_of
from greenpatch.verify.types import Frame

DEFINITION_LINES = 12  # first lines of each definition shown (signature, docstring, start of the body)
CONTEXT_CHARS = int(900 * CHARS_PER_TOKEN)  # repo context for one hole: definitions and the test, ~900 tokens
TEST_CHARS = 1600  # the failing test's part of it at most


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
    _, function = enclosing(tree, first)
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


# What the infill prompt shows, measured with the default model on real slips side by side (see the commit that set
# them): the hole's window instead of the whole file, the definitions the function uses, the failing test.
HOLE_WINDOW = True
INFILL_DEFINITIONS = True
INFILL_TEST = False


class PromptContext:
    def __init__(self, files: RunFiles, failures: FailureReader) -> None:
        self.files = files
        self.failures = failures
        self._windows: dict[tuple[str, int, int], Window | None] = {}
        self._infill: dict[tuple[str, int, int, str, bool], str] = {}  # the samples of one hole share their context

    def window(self, path: str, text: str, first: int, last: int) -> Window | None:
        key = (path, first, last)
        if key not in self._windows:
            self._windows[key] = hole_window(text, first, last) if HOLE_WINDOW else None
        return self._windows[key]

    def hole(self, suspect: Suspect, text: str) -> Hole:
        """The suspect's hole, its prefix and suffix the window around it (the whole file where there is none)."""
        return make_hole(suspect.path, text, suspect.line, suspect.last,
                         self.window(suspect.path, text, suspect.line, suspect.last))

    def holes(self, suspect: Suspect, text: str) -> list[HoleSpec]:
        """The other holes at the suspect (a line inserted, 2-3 lines masked), in the same window as its own."""
        window = self.window(suspect.path, text, suspect.line, suspect.last)
        return [*insertion_holes(suspect.path, text, suspect.line, window),
                *masked_holes(suspect.path, text, suspect.line, window=window)]

    def infill(self, group: Group, suspect: Suspect, hole: Hole | None, fim: FimFormat | None = None) -> str:
        """Text put before the file in an infill prompt: "" with nothing to add."""
        if not INFILL_DEFINITIONS and not INFILL_TEST:
            return ""
        key = (suspect.path, suspect.line, suspect.last, group.failing[0].nodeid, fim is not None)
        if key not in self._infill:
            self._infill[key] = self._infill_context(group, suspect, fim)
        return self._infill[key]

    def _infill_context(self, group: Group, suspect: Suspect, fim: FimFormat | None) -> str:
        text = self.files.text(suspect.path)
        if text is None:
            return ""
        definitions = used_definitions(
            text, suspect.path, suspect.line, suspect.last, self.failures.index, self.files.root,
            self.window(suspect.path, text, suspect.line, suspect.last), CONTEXT_CHARS - TEST_CHARS,
        ) if INFILL_DEFINITIONS else []
        facts = self.failures.facts(group.failing[0]) if INFILL_TEST else None
        return infill_context(fim, suspect.path, definitions, facts, self.files.root.name, with_test=INFILL_TEST)

    def rewrite(self, group: Group, source: str) -> list[ChatMessage]:
        """The rewrite's first messages: the function's source, what it uses from the package, the failing test,
        and its failure (actual vs expected, the frames in the package)."""
        result = group.failing[0]
        test_text = self.files.text(test_file_of(result.nodeid)) or ""
        test = test_function(test_text, result.nodeid) or test_text[:3000]
        facts = self.failures.facts(result)
        error = facts.summary(1200)
        if facts.frames:
            error += "\nRaised in:\n" + frames_text(facts.frames)
        text = self.files.text(group.path) or ""
        sm = self.files.map(group.path)
        fn = next((f for f in sm.functions if f.name == group.function), None) if sm else None
        definitions = used_definitions(text, group.path, fn.body_first, fn.body_first, self.failures.index,
                                       self.files.root, hole_window(text, fn.body_first, fn.body_first),
                                       CONTEXT_CHARS) if fn is not None else []
        return rewrite.first_messages(group.path, group.function, source, test, error,
                                      rewrite_context(definitions))


def test_function(text: str, nodeid: str) -> str | None:
    """Source of the test function a node id names (parametrize ids and classes handled)."""
    name = nodeid.split("::")[-1].split("[")[0]
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ast.get_source_segment(text, node)
    return None
