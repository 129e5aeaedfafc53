"""The user's files on disk: read them keeping what their bytes say (encoding, BOM, every line's own ending) and
write them back atomically, so that a fix changes the lines it changes and nothing else.

Repair works on text with "\\n" line breaks (what Python's universal newlines give); `SourceFile.render` puts a
new version of that text back into the file's own form: unchanged lines keep their ending, new lines take the
ending of the line they replace (or the file's most common one).
"""

from __future__ import annotations

import difflib
import io
import os
import re
import stat
import tempfile
import tokenize
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from greenpatch.errors import UnreadableFile, WriteError

# The line breaks of Python source and of LSP: str.splitlines would also split on \x0c, \x1c, \u2028, ...
_BREAK = re.compile(r"\r\n|\r|\n")
BOM = "\ufeff"
_Line = TypeVar("_Line")


def split_lines(text: str) -> list[tuple[str, str]]:
    """(content, ending) for every line; the last one's ending is "" (an empty last line when `text` ends with
    a line break), so "".join(c + e for c, e in split_lines(t)) == t."""
    lines: list[tuple[str, str]] = []
    start = 0
    for match in _BREAK.finditer(text):
        lines.append((text[start:match.start()], match.group()))
        start = match.end()
    lines.append((text[start:], ""))
    return lines


def normalize_newlines(text: str) -> str:
    """`text` with every line break as "\\n" (what reading in text mode gives)."""
    return _BREAK.sub("\n", text)


def common_ending(lines: list[tuple[str, str]]) -> str:
    endings = Counter(ending for _, ending in lines if ending)
    return endings.most_common(1)[0][0] if endings else "\n"


def differing_span(old: list[_Line], new: list[_Line]) -> tuple[int, int, int]:
    """(start, end_old, end_new): old[start:end_old] becomes new[start:end_new]; the lines around are shared."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old, end_new = end_old - 1, end_new - 1
    return start, end_old, end_new


def with_endings(original: str, new: str) -> str:
    """`new` (any line breaks) laid over `original`: the lines they share keep `original`'s bytes, ending
    included; changed lines take the ending of the line they replace, added ones the file's most common ending."""
    old_lines = split_lines(original)
    contents = normalize_newlines(new).split("\n")
    start, end_old, end_new = differing_span([c for c, _ in old_lines], contents)
    default = common_ending(old_lines)
    middle: list[tuple[str, str]] = []
    # Within the changed span too, lines that stay (a rewritten function's untouched lines) keep their bytes.
    matcher = difflib.SequenceMatcher(
        None, [c for c, _ in old_lines[start:end_old]], contents[start:end_new], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            middle += old_lines[start + i1: start + i2]
            continue
        for offset, content in enumerate(contents[start + j1: start + j2]):
            replaced = start + i1 + offset
            middle.append((content, old_lines[replaced][1] if replaced < start + i2 else default))
    lines = old_lines[:start] + middle + old_lines[end_old:]
    # Only the last line has no ending: a line that stopped being the last gets one, the new last loses its own.
    fixed = [(c, e or default) for c, e in lines[:-1]] + [(lines[-1][0], "")]
    return "".join(c + e for c, e in fixed)


@dataclass(frozen=True)
class SourceFile:
    """One file as read from disk. `text` is decoded, without the BOM, with the line endings found there."""

    text: str
    encoding: str  # the codec that turns `text` back into the same bytes ("utf-8-sig" when there is a BOM)

    @property
    def bom(self) -> bool:
        return self.encoding == "utf-8-sig"

    @property
    def lf_text(self) -> str:
        return normalize_newlines(self.text)

    @property
    def utf8(self) -> bool:
        """Whether `text` written as UTF-8 (plus the BOM) gives the file's own bytes (the sandbox writes UTF-8)."""
        return self.encoding in ("utf-8", "utf-8-sig") or self.text.isascii()

    def render(self, new_text: str) -> str:
        """`new_text` in this file's form: its line endings kept wherever the lines are the same."""
        return with_endings(self.text, new_text)

    def encode(self, text: str) -> bytes:
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise UnreadableFile(f"the new text cannot be written as {self.encoding}: {exc.reason}") from None


def decode_source(data: bytes, name: str = "the file") -> SourceFile:
    """The file's text, decoded as Python would (BOM, coding cookie, else UTF-8). Refuses bytes that do not
    decode, or that would not come back byte for byte, rather than guess."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # an unknown coding cookie, or a BOM with a cookie that is not utf-8
        raise UnreadableFile(f"{name}: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnreadableFile(f"{name} is not valid {encoding}: {exc}") from None
    if text.encode(encoding) != data:
        raise UnreadableFile(f"{name} does not survive a round trip through {encoding}")
    return SourceFile(text, encoding)


def read_source(path: Path) -> SourceFile:
    """Raises OSError when the file cannot be read, UnreadableFile when it cannot be decoded."""
    return decode_source(Path(path).read_bytes(), str(path))


@dataclass
class _Pending:
    target: str
    temp: str


def _prepare(path: Path, data: bytes) -> _Pending:
    """Write `data` to a temp file beside `path` (same file system, so the rename is atomic), synced to disk,
    with the original's mode. Nothing of the original changes here."""
    target = os.path.realpath(path)  # through a symlink: replace the file it points at, keep the link
    st = os.stat(target)
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        # Even root, who may write it, should not override a file the user made read-only.
        raise OSError(13, "the file is read-only", str(path))
    if not os.access(target, os.W_OK):
        raise OSError(13, "permission denied", str(path))
    folder, name = os.path.split(target)
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".greenpatch", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(st.st_mode))
        if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(temp, st.st_uid, st.st_gid)
            except PermissionError:
                pass  # only root may give a file away; a normal user's file is theirs already
    except BaseException:
        _remove(temp)
        raise
    return _Pending(target, temp)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _sync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def write_files(contents: dict[Path, bytes]) -> None:
    """Replace several files, each atomically: every new content is written and synced beside its file first, so
    a full disk, a read-only file or a permission problem stops the write before any file has changed.
    Raises WriteError naming the file; the originals are then intact."""
    pending: list[_Pending] = []
    try:
        for path, data in contents.items():
            try:
                pending.append(_prepare(path, data))
            except OSError as exc:
                raise WriteError(f"could not write {path}: {exc.strerror or exc}; no file was changed") from None
        replaced: list[str] = []
        for item in pending:
            try:
                os.replace(item.temp, item.target)
            except OSError as exc:
                done = f" ({', '.join(replaced)} already written)" if replaced else "; no file was changed"
                raise WriteError(f"could not write {item.target}: {exc.strerror or exc}{done}") from None
            replaced.append(item.target)
        for folder in {os.path.dirname(item.target) for item in pending}:
            _sync_folder(folder)
    finally:
        for item in pending:
            if os.path.exists(item.temp):
                _remove(item.temp)


def write_file(path: Path, data: bytes) -> None:
    write_files({Path(path): data})


__all__ = [
    "BOM", "SourceFile", "common_ending", "decode_source", "differing_span", "normalize_newlines", "read_source",
    "split_lines", "with_endings", "write_file", "write_files",
]
