"""The files one repair run reads: the workspace's text with the caller's unsaved changes on top, each file read
once, in "\n" lines, and put back in its on-disk form for the sandbox."""

from __future__ import annotations

from pathlib import Path

from greenpatch.errors import GreenpatchError
from greenpatch.repair.candidates import Candidate
from greenpatch.repair.localize import SourceMap
from greenpatch.verify.types import Changes
from greenpatch.workspace.files import BOM, SourceFile, read_source


class RunFiles:
    def __init__(self, root: Path, changes: Changes) -> None:
        self.root = root
        self.changes = dict(changes)
        self._texts: dict[str, str] = {}
        self._sources: dict[str, SourceFile] = {}
        self._maps: dict[str, SourceMap] = {}

    def text(self, rel: str) -> str | None:
        if rel in self.changes:
            return self.changes[rel]
        if rel not in self._texts:
            try:
                source = read_source(self.root / rel)
            except (OSError, GreenpatchError):
                return None
            if not source.utf8:
                return None  # the sandbox writes candidates as UTF-8: a latin-1 file with accents would change
            self._sources[rel] = source
            self._texts[rel] = source.lf_text  # repair works on "\n" lines; on_disk puts the file's own back
        return self._texts[rel]

    def test_text(self, rel: str) -> str:
        return self.text(rel) or ""

    def on_disk(self, rel: str, text: str, *, bom: bool = False) -> str:
        """`text` in the form the file has on disk (its line endings; its BOM with bom=True): what a fix writes,
        and so what the sandbox verifies."""
        source = self._sources.get(rel)
        if source is None:
            return text
        return (BOM if bom and source.bom else "") + source.render(text)

    def map(self, rel: str) -> SourceMap | None:
        if rel not in self._maps:
            text = self.text(rel)
            if text is None:
                return None
            self._maps[rel] = SourceMap(text)
        return self._maps[rel]

    def python_files(self) -> list[str]:
        from greenpatch.verify.sandbox import source_files

        return sorted(rel for rel in source_files(self.root) if rel.endswith(".py")) + sorted(
            rel for rel in self.changes if rel.endswith(".py")
        )

    def unparsable(self, focus: list[str] | None) -> list[str]:
        files = [f for f in focus or []] or self.python_files()
        return [rel for rel in dict.fromkeys(files) if rel.endswith(".py") and (m := self.map(rel)) and not m.ok]

    def overlay(self, cand: Candidate) -> Changes:
        """The caller's changes with the candidate on top: what the sandbox runs the tests on."""
        changes = dict(self.changes)
        changes[cand.path] = self.on_disk(cand.path, cand.text, bom=True)
        return changes
