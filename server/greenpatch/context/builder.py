"""Prompt context for completion and repair: the code around the cursor, definitions of the names in use, recent edits.

Everything is budgeted in characters (engine.base.CHARS_PER_TOKEN) so building a prompt never calls the model.
Order matters for speed: the engine reuses the evaluated KV cache from the front, so the stable parts (repo
context, sorted the same way every time) come first and the window start moves in steps, not with every line.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from greenpatch.engine.base import FimFormat

if TYPE_CHECKING:
    from greenpatch.workspace.index import Symbol

WINDOW_STEP = 16  # the prefix window starts on a multiple of this many lines, so it moves in steps
WINDOW_SLACK = 0.5  # a held window start is kept until the window is this much over its budget (see nearby)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMPORT = re.compile(r"^\s*(?:from\s+[\w.]+\s+)?import\s+(.+)$")
_KEYWORDS = frozenset(
    ["False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "self", "cls", "print", "len", "range", "str", "int", "float", "list", "dict", "set", "tuple", "bool", "isinstance", "super"]
)


class SymbolIndex(Protocol):
    """What the context needs of the workspace index (workspace.index.WorkspaceIndex)."""

    root: Path

    def lookup(self, name: str) -> list[Symbol]: ...

    def snippet(self, symbol: Symbol) -> str: ...


def split_at(text: str, line: int, col: int) -> tuple[str, str]:
    """(text before, text after) the 0-based (line, col) position; col counts characters and is clamped."""
    lines = text.split("\n")
    if line >= len(lines):
        return text, ""
    offset = sum(len(x) + 1 for x in lines[:line]) + min(col, len(lines[line]))
    return text[:offset], text[offset:]


def nearby(text: str, line: int, col: int, *, prefix_chars: int, suffix_lines: int,
           held_head: str | None = None) -> tuple[str, str]:
    """The prefix window (whole lines from a step-aligned start, within prefix_chars) and the suffix window.

    `held_head`: the start of the window used last in this area (HeldContext.head). The window keeps that start
    while it stays within prefix_chars and WINDOW_SLACK more: a new start changes the prompt from there on, so the
    model evaluates it all again (~10 s for the default model on 2 cores), and typing on past the budget would
    otherwise move it every WINDOW_STEP lines."""
    before, after = split_at(text, line, col)
    rest = after.split("\n")
    suffix = "\n".join(rest[: suffix_lines + 1])
    if held_head:
        at = before.rfind(held_head)
        if at >= 0 and (at == 0 or before[at - 1] == "\n") and len(before) - at <= prefix_chars * (1 + WINDOW_SLACK):
            return before[at:], suffix
    lines = before.split("\n")
    start = 0
    size = len(before)
    while size > prefix_chars and start < len(lines) - 1:
        step_end = min(start + WINDOW_STEP, len(lines) - 1)
        size -= sum(len(x) + 1 for x in lines[start:step_end])
        start = step_end
    prefix = "\n".join(lines[start:])
    if len(prefix) > prefix_chars:
        prefix = prefix[-prefix_chars:]
    return prefix, suffix


@dataclass
class EditRegion:
    path: str
    start_line: int
    text: str


class RecentEdits:
    """A small ring of recently edited code regions, one per (file, area), newest last."""

    def __init__(self, size: int = 4, radius: int = 6) -> None:
        self.size = size
        self.radius = radius
        self._regions: deque[EditRegion] = deque(maxlen=size)
        self._last_text: dict[str, str] = {}
        self._held: tuple[str, int, list[EditRegion]] | None = None  # near_cursor's last answer

    def record(self, path: str, text: str) -> None:
        """Remember the area that changed since the last text seen for `path`."""
        old = self._last_text.get(path)
        self._last_text[path] = text
        if old is None or old == text:
            return
        old_lines, new_lines = old.split("\n"), text.split("\n")
        first = 0
        while first < min(len(old_lines), len(new_lines)) and old_lines[first] == new_lines[first]:
            first += 1
        start = max(0, first - self.radius)
        region = "\n".join(new_lines[start : first + self.radius + 1])
        for existing in list(self._regions):
            if existing.path == path and abs(existing.start_line - start) <= self.radius * 2:
                self._regions.remove(existing)
        self._regions.append(EditRegion(path, start, region))

    def near_cursor(self, path: str, line: int, window: int = 40) -> list[EditRegion]:
        """The regions to show for a cursor at `path`:`line`, leaving out the code around it (the prompt has
        that). The answer is kept while the cursor stays in the same area: typing there records a new region (and
        may push out the oldest), and a context that changed with every keystroke would make the model evaluate
        the whole prompt again each time."""
        held = self._held
        if held is not None and held[0] == path and abs(held[1] - line) <= self.radius:
            return held[2]
        found = self.regions(exclude=(path, line - window, line + window))
        self._held = (path, line, found)
        return found

    def regions(self, exclude: tuple[str, int, int] | None = None) -> list[EditRegion]:
        """Regions, oldest first, leaving out the one overlapping `exclude` = (path, first_line, last_line)."""
        out = []
        for r in self._regions:
            if exclude and r.path == exclude[0]:
                end = r.start_line + r.text.count("\n")
                if r.start_line <= exclude[2] and end >= exclude[1]:
                    continue
            out.append(r)
        return out


class HeldContext:
    """The rendered repo context last used at a place in each of the last few files, kept while the cursor stays
    near it or comes back to it.

    The repo context comes first in the prompt, so any change to it makes the model evaluate the whole prompt
    again (~7 s for 1,000 tokens of the default model on 2 cores). Recomputed at every line, it changed whenever
    the line just finished used another name or pushed one out of the lines looked at: pressing Enter cost a full
    evaluation. It is recomputed only when the cursor leaves the area (more than `lines` lines away) or when the
    prefix window moved its start, which changes the prompt from there on anyway; while it is held, the window keeps
    its start too, up to WINDOW_SLACK over its budget (see nearby). Held per file, a jump back to a
    file finds the prompt it left there, whose evaluated state the engine parked at the jump away (KvCache._park).
    The price: a name used for the first time in this area, or a definition edited in another file, reaches the
    prompt only when the context is computed again."""

    def __init__(self, lines: int = 24, files: int = 4) -> None:
        self.lines = lines
        self.files = files
        self._held: dict[str, tuple[int, str, str]] = {}  # path -> (line, window head, rendered context)

    def head(self, path: str, line: int) -> str | None:
        """The start of the prefix window held for this area, to keep the window there (see nearby)."""
        held = self._held.get(path)
        return held[1] if held is not None and abs(held[0] - line) <= self.lines else None

    def get(self, path: str, line: int, window: str) -> str | None:
        held = self._held.get(path)
        if held is None or abs(held[0] - line) > self.lines or not window.startswith(held[1]):
            return None
        return held[2]

    def hold(self, path: str, line: int, window: str, context: str) -> None:
        self._held.pop(path, None)
        self._held[path] = (line, window[:256], context)
        while len(self._held) > self.files:
            del self._held[next(iter(self._held))]  # the file left longest ago

    def clear(self) -> None:
        self._held.clear()


def names_near(prefix: str, lines: int = 40) -> list[str]:
    """Identifiers worth looking up: imported names and names used in the last lines before the cursor's line.

    Not the cursor's line itself: each name typed there would change the repo context, placed first in the prompt,
    and make the model evaluate the whole prompt again mid-line."""
    found: dict[str, None] = {}
    prefix = prefix[: prefix.rfind("\n") + 1]
    for row in prefix.split("\n"):
        match = _IMPORT.match(row)
        if match:
            for part in match.group(1).replace("(", " ").replace(")", " ").split(","):
                name = part.strip().split(" as ")[0].strip().split(".")[-1]
                if name and name != "*":
                    found[name] = None
    for name in _IDENT.findall("\n".join(prefix.split("\n")[-lines:])):
        if name not in _KEYWORDS and len(name) > 2:
            found[name] = None
    return list(found)


@dataclass
class RepoContext:
    files: list[tuple[str, str]] = field(default_factory=list)  # (relative path, content), stable order

    def render(self, fim: FimFormat | None, current: str, repo: str = "") -> str:
        """In the model's repo-level format when it has one (Qwen2.5-Coder), else as commented file headers."""
        if fim is not None and fim.file_sep:
            if not self.files:
                return ""
            head = f"{fim.repo_name}{repo or 'workspace'}\n" if fim.repo_name else ""
            body = "".join(f"{fim.file_sep}{path}\n{content.rstrip()}\n" for path, content in self.files)
            return f"{head}{body}{fim.file_sep}{current}\n"
        return "".join(f"# file: {path}\n{content.rstrip()}\n\n" for path, content in self.files)


def repo_context(
    index: SymbolIndex | None,
    prefix: str,
    *,
    current: Path | None,
    root: Path | None,
    budget_chars: int,
    recent: list[EditRegion] | None = None,
) -> RepoContext:
    """Definitions of names near the cursor from other files, then recent edits, within budget_chars."""
    ctx = RepoContext()
    used = 0
    pieces: list[tuple[str, int, str]] = []  # (path, line, text)
    if index is not None:
        seen: set[tuple[str, int]] = set()
        for name in names_near(prefix):
            try:
                symbols = index.lookup(name)
            except Exception:  # noqa: BLE001,S112 - the index is optional help; a failing lookup must not stop completion
                continue
            for symbol in symbols[:2]:
                path = symbol.path
                if current is not None and path == current:
                    continue
                key = (str(path), symbol.start_line)
                if key in seen:
                    continue
                seen.add(key)
                try:
                    text = index.snippet(symbol)
                except Exception:  # noqa: BLE001,S112 - the index is optional help
                    continue
                if not text.strip() or used + len(text) > budget_chars:
                    continue
                used += len(text)
                pieces.append((_relative(path, root), key[1], text))
    for region in recent or []:
        if used + len(region.text) > budget_chars:
            break
        used += len(region.text)
        pieces.append((_relative(Path(region.path), root), region.start_line, region.text))
    pieces.sort(key=lambda p: (p[0], p[1]))  # stable order across keystrokes keeps the KV cache valid
    merged: dict[str, list[str]] = {}
    for rel, _, text in pieces:
        merged.setdefault(rel, []).append(text.rstrip())
    ctx.files = [(rel, "\n...\n".join(texts)) for rel, texts in merged.items()]
    return ctx


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.name if path.is_absolute() else path.as_posix()
