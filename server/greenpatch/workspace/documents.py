"""Open documents: text, version and a tree-sitter tree kept current with incremental reparses.

LSP positions count UTF-16 code units; tree-sitter counts bytes. This module converts between them so the rest of
the server can use LSP positions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter

from greenpatch.workspace import syntax


def utf16_to_byte_col(line_text: str, character: int) -> int:
    """Byte offset within `line_text` of the LSP UTF-16 column `character` (clamped to the line)."""
    units = 0
    for index, char in enumerate(line_text):
        if units >= character:
            return len(line_text[:index].encode("utf-8"))
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line_text.encode("utf-8"))


def byte_to_utf16_col(line_bytes: bytes, byte_col: int) -> int:
    prefix = line_bytes[:byte_col].decode("utf-8", "replace")
    return len(prefix.encode("utf-16-le")) // 2


def str_to_utf16_col(line_text: str, index: int) -> int:
    """LSP UTF-16 column of the Python string index `index` within `line_text`."""
    return len(line_text[:index].encode("utf-16-le")) // 2


def utf16_to_str_col(line_text: str, character: int) -> int:
    """Python string index within `line_text` of the LSP UTF-16 column `character`."""
    units = 0
    for index, char in enumerate(line_text):
        if units >= character:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line_text)


@dataclass
class Document:
    uri: str
    path: Path | None
    text: str
    version: int
    tree: tree_sitter.Tree = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.tree = syntax.parse(self.text)

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def offset(self, line: int, character: int) -> int:
        """String index of an LSP position (line past the end clamps to the end of the text)."""
        lines = self.lines
        if line >= len(lines):
            return len(self.text)
        start = sum(len(item) + 1 for item in lines[:line])
        return start + utf16_to_str_col(lines[line], character)

    def apply_change(self, start: tuple[int, int] | None, end: tuple[int, int] | None, new_text: str) -> None:
        """Apply one LSP content change (range None: the whole text) and reparse incrementally."""
        if start is None or end is None:
            self.text = new_text
            self.tree = syntax.parse(new_text)
            return
        start_index = self.offset(*start)
        end_index = max(start_index, self.offset(*end))
        old = self.text
        start_byte = len(old[:start_index].encode("utf-8"))
        old_end_byte = start_byte + len(old[start_index:end_index].encode("utf-8"))
        new_end_byte = start_byte + len(new_text.encode("utf-8"))
        start_point = _point(old, start_index)
        old_end_point = _point(old, end_index)
        self.text = old[:start_index] + new_text + old[end_index:]
        new_end_point = _point(self.text, start_index + len(new_text))
        self.tree.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=new_end_byte,
            start_point=start_point,
            old_end_point=old_end_point,
            new_end_point=new_end_point,
        )
        self.tree = syntax.parse(self.text, self.tree)


def _point(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    line = before.count("\n")
    line_start = before.rfind("\n") + 1
    return line, len(before[line_start:].encode("utf-8"))
