"""The workspace symbol index: definitions, references and imports of every Python file, from tags.scm.

Thread-safe: the watcher thread updates it while LSP handlers read it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from greenpatch.workspace import scan, syntax

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str
    path: Path
    start_line: int  # 0-based
    end_line: int  # 0-based, inclusive
    name_line: int = 0
    name_col: int = 0  # bytes
    container: str = ""


@dataclass
class FileEntry:
    path: Path
    digest: str
    symbols: list[Symbol]
    references: list[syntax.Reference]
    problems: list[syntax.SyntaxProblem]
    lines: list[str] = field(repr=False, default_factory=list)


@dataclass
class ScanStats:
    files: int = 0
    skipped: int = 0
    symbols: int = 0
    errors: int = 0
    seconds: float = 0.0


def _entry(path: Path, text: str) -> FileEntry:
    tree = syntax.parse(text)
    tags = syntax.tags(tree)
    classes = [d for d in tags.definitions if d.kind == "class"]
    symbols = []
    for d in tags.definitions:
        container = ""
        if d.kind == "method":
            owners = [c for c in classes if c.start_line < d.start_line <= c.end_line]
            container = owners[-1].name if owners else ""
        symbols.append(Symbol(d.name, d.kind, path, d.start_line, d.end_line, d.name_line, d.name_col, container))
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    return FileEntry(path, digest, symbols, tags.references, syntax.syntax_problems(tree), text.split("\n"))


class WorkspaceIndex:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[Path, FileEntry] = {}
        self._by_name: dict[str, list[Symbol]] = {}
        self._lock = threading.RLock()
        self.stats = ScanStats()

    # -- building ------------------------------------------------------------------------------------------

    def scan(self) -> ScanStats:
        started = time.perf_counter()
        stats = ScanStats()
        seen: set[Path] = set()
        for path in scan.iter_source_files(self.root):
            if self.update_file(path):
                stats.files += 1
                seen.add(path)
            else:
                stats.skipped += 1
        with self._lock:
            for gone in set(self._files) - seen:
                self._remove(gone)
            stats.symbols = sum(len(e.symbols) for e in self._files.values())
            stats.errors = sum(len(e.problems) for e in self._files.values())
        stats.seconds = time.perf_counter() - started
        self.stats = stats
        return stats

    def update_file(self, path: Path, text: str | None = None) -> bool:
        """(Re)index one file from `text` or from disk; a file that vanished or can't be read is dropped."""
        path = path.resolve()
        if text is None:
            text = scan.read_source(path) if path.is_file() else None
        if text is None:
            self.remove_file(path)
            return False
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
        with self._lock:
            old = self._files.get(path)
            if old is not None and old.digest == digest:
                return True
        entry = _entry(path, text)
        with self._lock:
            self._remove(path)
            self._files[path] = entry
            for symbol in entry.symbols:
                self._by_name.setdefault(symbol.name, []).append(symbol)
        return True

    def remove_file(self, path: Path) -> None:
        with self._lock:
            self._remove(path.resolve())

    def _remove(self, path: Path) -> None:
        entry = self._files.pop(path, None)
        if entry is None:
            return
        for symbol in entry.symbols:
            bucket = self._by_name.get(symbol.name, [])
            bucket[:] = [s for s in bucket if s.path != path]
            if not bucket:
                self._by_name.pop(symbol.name, None)

    # -- queries -------------------------------------------------------------------------------------------

    @property
    def files(self) -> list[Path]:
        with self._lock:
            return sorted(self._files)

    def entry(self, path: Path) -> FileEntry | None:
        with self._lock:
            return self._files.get(path.resolve())

    def lookup(self, name: str) -> list[Symbol]:
        """Definitions named exactly `name`."""
        with self._lock:
            return list(self._by_name.get(name, []))

    def search(self, query: str, limit: int = 200) -> list[Symbol]:
        """Definitions whose name contains `query` (case-insensitive; exact and prefix matches first)."""
        needle = query.lower()
        with self._lock:
            names = [n for n in self._by_name if needle in n.lower()]
        names.sort(key=lambda n: (n.lower() != needle, not n.lower().startswith(needle), len(n), n))
        found: list[Symbol] = []
        for name in names:
            found.extend(self.lookup(name))
            if len(found) >= limit:
                break
        return found[:limit]

    def snippet(self, symbol: Symbol, max_lines: int = 40) -> str:
        entry = self.entry(symbol.path)
        if entry is None:
            return ""
        end = min(symbol.end_line, symbol.start_line + max_lines - 1)
        return "\n".join(entry.lines[symbol.start_line : end + 1])

    def imports(self, path: Path) -> list[syntax.Reference]:
        entry = self.entry(path)
        return [r for r in entry.references if r.kind == "import"] if entry else []
