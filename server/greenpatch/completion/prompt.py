"""From a document and a cursor to an infill request: the windows, the repo context, line-or-block, stops."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from greenpatch.config import CompletionSettings
from greenpatch.context.builder import (
    HeldContext,
    RecentEdits,
    SymbolIndex,
    nearby,
    repo_context,
    split_at,
)
from greenpatch.engine.base import CHARS_PER_TOKEN, FimFormat

LINE_MAX_TOKENS = 48
BLOCK_STOPS = ["\n\n\n", "\ndef ", "\nclass ", "\nif __name__"]


@dataclass
class CompletionRequest:
    prefix: str  # the prefix window sent to the model
    suffix: str  # the suffix window sent to the model
    context: str  # rendered repo context (placed first)
    mode: str  # "line" | "block"
    stop: list[str]
    max_tokens: int
    full_prefix: str  # the whole document before the cursor (filters and the cache use these)
    full_suffix: str
    code_first: bool = False  # the cursor's line is empty: ask for text on it, not for nothing or a line break
    short: bool = False  # a short window, no repo context (the first suggestion at a cold place: short_request)


def wants_block(text: str, line: int, col: int) -> bool:
    try:
        from greenpatch.workspace.syntax import wants_block as syntax_wants_block
    except ImportError:  # the workspace package is not there: a plain-text rule of thumb
        lines = text.split("\n")
        if line >= len(lines) or lines[line].strip():
            return False
        previous = [x for x in lines[:line] if x.strip()]
        return bool(previous) and previous[-1].split("#", 1)[0].rstrip().endswith(":")
    return syntax_wants_block(text, line, col)


def build_request(
    text: str,
    line: int,
    col: int,
    settings: CompletionSettings,
    *,
    fim: FimFormat | None,
    path: Path | None = None,
    root: Path | None = None,
    index: SymbolIndex | None = None,
    recent: RecentEdits | None = None,
    held: HeldContext | None = None,
    mode: str | None = None,
) -> CompletionRequest:
    full_prefix, full_suffix = split_at(text, line, col)
    budget = int(settings.context_tokens * CHARS_PER_TOKEN)
    # Most of the budget goes to the code around the cursor; what is left over carries repo context.
    key = str(path) if path is not None else ""
    prefix, suffix = nearby(text, line, col, prefix_chars=int(budget * 0.75), suffix_lines=settings.suffix_lines,
                            held_head=held.head(key, line) if held is not None else None)
    context = held.get(key, line, prefix) if held is not None else None
    if context is None:
        current = path.resolve() if path is not None else None
        regions = recent.near_cursor(str(path), line) if recent is not None and path else []
        repo = repo_context(index, prefix, current=current, root=root, budget_chars=max(budget - len(prefix), 0),
                            recent=regions)
        rel = path.name if path is not None else "untitled.py"
        if path is not None and root is not None:
            try:
                rel = path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                pass
        context = repo.render(fim, rel, root.name if root is not None else "")
        if held is not None:
            held.hold(key, line, prefix, context)
    mode = mode or ("block" if wants_block(text, line, col) else "line")
    if mode == "block":
        stop, max_tokens = list(BLOCK_STOPS), settings.max_tokens
    else:
        stop, max_tokens = ["\n"], min(settings.max_tokens, LINE_MAX_TOKENS)
    blank_line = not full_prefix.rsplit("\n", 1)[-1].strip() and not full_suffix.split("\n", 1)[0].strip()
    return CompletionRequest(prefix, suffix, context, mode, stop, max_tokens, full_prefix, full_suffix, blank_line)


SHORT_ALIGN = 8  # a short window starts at a line number that is a multiple of this (see short_request)


def short_request(request: CompletionRequest, tokens: int) -> CompletionRequest | None:
    """`request` with a window of about `tokens` tokens and no repo context, for the first suggestion at a place
    whose full prompt is not evaluated yet (~1,000 tokens: ~10 s of the default model on 2 cores; see
    CompletionService._short). The window is whole lines: a quarter at most below the cursor, the rest above it,
    starting at a line number that is a multiple of SHORT_ALIGN, so that typing on the line and the next lines keep
    its start (and the prompt evaluated for it). None when the request's own prompt is no longer."""
    budget = int(tokens * CHARS_PER_TOKEN)
    head, newline, line = request.full_prefix.rpartition("\n")
    below = request.suffix.split("\n")
    suffix, size = below[0], len(below[0])
    for row in below[1:]:
        if size + len(row) + 1 > budget // 4:
            break
        suffix, size = suffix + "\n" + row, size + len(row) + 1
    above = head.split("\n") if newline else []
    start, room = len(above), budget - size
    while start > 0 and len(above[start - 1]) + 1 <= room:
        start -= 1
        room -= len(above[start]) + 1
    start = min(-(-start // SHORT_ALIGN) * SHORT_ALIGN, len(above))
    prefix = "".join(row + "\n" for row in above[start:]) + line
    if not request.context and suffix == request.suffix and len(request.prefix) <= len(prefix):
        return None
    return replace(request, prefix=prefix, suffix=suffix, context="", short=True)
