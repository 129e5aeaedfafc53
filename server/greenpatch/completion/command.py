"""`greenpatch complete FILE:LINE:COL`: print the inline completion the editor would show there."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from greenpatch.config import Settings
from greenpatch.errors import UsageError

if TYPE_CHECKING:
    from greenpatch.context.builder import SymbolIndex


def parse_location(location: str) -> tuple[Path, int, int]:
    """FILE:LINE:COL with 1-based line and column -> (path, 0-based line, 0-based column)."""
    match = re.fullmatch(r"(.+):(\d+):(\d+)", location)
    if not match:
        raise UsageError(f"{location!r} is not FILE:LINE:COL", "for example: src/app.py:12:5 (1-based)")
    path = Path(match.group(1)).expanduser()
    line, col = int(match.group(2)), int(match.group(3))
    if line < 1 or col < 1:
        raise UsageError(f"{location!r}: line and column start at 1")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    return path.resolve(), line - 1, col - 1


def find_root(path: Path) -> Path:
    for parent in [path.parent, *path.parents]:
        if any((parent / marker).exists() for marker in ("pyproject.toml", "setup.py", "setup.cfg", ".git")):
            return parent
    return path.parent


def _index(root: Path) -> SymbolIndex | None:
    try:
        from greenpatch.workspace.index import WorkspaceIndex
    except ImportError:
        return None
    index = WorkspaceIndex(root)
    try:
        index.scan()
    except Exception:  # noqa: BLE001 - repo context is a bonus; completion works without it
        return None
    return index


def complete_command(location: str, *, model: str | None, verbose: bool, gate: bool) -> int:
    from greenpatch.completion.service import CompletionService, describe
    from greenpatch.engine import EngineWorker, load_engine, models

    path, line, col = parse_location(location)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if line >= len(lines):
        raise UsageError(f"{path} has {len(lines)} lines; line {line + 1} is past the end")
    settings = Settings()
    name = model or settings.model.completion
    if name != "fake":
        models.ensure_model(name, settings.model.cache_dir)  # installs on first use (with a progress bar)
    root = find_root(path)
    started = time.perf_counter()
    index = _index(root)
    index_seconds = time.perf_counter() - started
    worker = EngineWorker(lambda: load_engine(name, settings))
    completion = settings.completions
    completion.debounce_ms = 0
    completion.block_seconds = 0  # nobody is typing: a block suggestion may take its time
    completion.prefetch = False  # nor will anyone press Enter after it
    if not gate:
        completion.gate_threshold = -1e9
    from greenpatch.verify.python import resolve_python

    # asked for on the command line: the project's code may run (its docstring examples, completion/examples.py)
    service = CompletionService(worker, completion, index=index, root=root, trusted=True,
                                python=resolve_python(root, settings.python))
    try:
        load_started = time.perf_counter()
        worker.warm_up().result()
        load_seconds = time.perf_counter() - load_started
        suggestion = asyncio.run(service.complete(path.as_uri(), path, text, 1, line, col))
    finally:
        worker.close()
    if suggestion is not None and suggestion.shown:
        sys.stdout.write(suggestion.text + ("\n" if not suggestion.text.endswith("\n") else ""))
    if verbose:
        info = describe(suggestion)
        print(
            f"greenpatch: model {name} (load {load_seconds:.2f} s), index {index_seconds:.2f} s, "
            f"suggestion {info.get('seconds')} s, mode {info.get('mode')}, mean logprob "
            f"{_fmt(info.get('mean_logprob'))}, gate {completion.gate_threshold if gate else 'off'}: "
            f"{'shown' if info.get('shown') else 'withheld'}"
            + (f" (docstring examples: {info['examples']})" if info.get("examples") else "")
            + f"; prompt {info.get('prompt_tokens')} tokens"
            + ("" if suggestion is None or suggestion.shown else f"; raw {suggestion.raw!r}"),
            file=sys.stderr,
        )
    return 0 if suggestion is not None and suggestion.shown else 1


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"
