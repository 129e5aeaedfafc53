"""Which files of a workspace to index: Python sources, minus VCS/virtualenv/build folders, what .gitignore
ignores, binary and huge files."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pathspec

log = logging.getLogger(__name__)

SKIP_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "node_modules", "__pycache__", "build", "dist",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", ".eggs", ".idea", ".vscode",
    ".greenpatch",
}
MAX_BYTES = 1_000_000


def _is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").exists()


def _gitignore(directory: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())


def is_candidate_file(path: Path) -> bool:
    return path.suffix in (".py", ".pyi")


def iter_source_files(root: Path) -> Iterator[Path]:
    """Python files under `root` worth indexing, in a stable order."""
    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []
    root_spec = _gitignore(root)
    if root_spec:
        specs.append((root, root_spec))

    def ignored(path: Path, is_dir: bool) -> bool:
        for base, spec in specs:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + ("/" if is_dir else "")):
                return True
        return False

    for dirpath, dirnames, filenames in os.walk(root):
        current = Path(dirpath)
        if current != root:
            nested = _gitignore(current)
            if nested:
                specs.append((current, nested))
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not d.endswith(".egg-info")
            and not _is_virtualenv(current / d)
            and not ignored(current / d, True)
        )
        for name in sorted(filenames):
            path = current / name
            if is_candidate_file(path) and not ignored(path, False):
                yield path


def read_source(path: Path) -> str | None:
    """The file's text, or None (with a log line) when it is unreadable, binary, huge or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            log.info("skipping %s: %d bytes is more than the %d-byte limit", path, size, MAX_BYTES)
            return None
        data = path.read_bytes()
    except OSError as exc:
        log.info("skipping %s: %s", path, exc.strerror or exc)
        return None
    if b"\0" in data[:8192]:
        log.info("skipping %s: binary file", path)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        log.info("skipping %s: not UTF-8", path)
        return None
