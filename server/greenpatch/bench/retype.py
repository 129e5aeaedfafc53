"""Retyping lines of real files one keystroke at a time through the CompletionService, timing each suggestion.

The typing replay of `greenpatch bench complete` (its latency modes, see bench/complete.py), of its real-code replay
(bench/realcode.py) and of the remote engine's comparison (bench/remote.py, which is handed `replay`).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from greenpatch.completion.service import CompletionService
from greenpatch.errors import GreenpatchError


def keystroke_streams(files: list[Path], keystrokes: int, lines_per_file: int = 2) -> list[tuple[Path, str, int, str]]:
    """(file, text with the target line cut to its indentation, line number, the line's text) per target line.

    Target lines come in pairs: a line, then the next line of code after it, typed with the first one whole above
    it, as when the user writes a line, presses Enter and goes on to the next: while the first is typed, the second
    and the blank lines before it are not in the file yet."""
    targets = []
    for path in files:
        rows = path.read_text(encoding="utf-8").split("\n")
        good = [i for i, r in enumerate(rows) if 24 <= len(r.strip()) <= 90 and not r.strip().startswith(("#", '"', "'"))
                and i > 20]
        if not good:
            continue
        pairs = max(1, lines_per_file // 2)
        step = max(1, len(good) // (pairs + 1))
        for i in good[step::step][:pairs]:
            following = [k for k in range(i + 1, min(i + 4, len(rows))) if rows[k].strip()]
            after = following[0] + 1 if following else i + 1  # the rows below the pair's first line while typed
            for k in [i] + following[:1]:
                indent = rows[k][: len(rows[k]) - len(rows[k].lstrip())]
                cut = rows[:k] + [indent] + rows[(after if k == i else k + 1) :]
                targets.append((path, "\n".join(cut), k, rows[k]))
    return targets


def revisits(streams: list[tuple[Path, str, int, str]]) -> list[tuple[Path, str, int, str]]:
    """Jumps back: to the file left just before the last one, then to the last file again (as when going back and
    forth between a module and its tests), each time to a new line opened below the last line typed there. That
    request was never made before (the line whole was: with short lines the replay types them to the end, and the
    suggestion cache would answer it), and its prompt is the one left there but for one line."""
    lasts: dict[Path, tuple[Path, str, int, str]] = {}
    for stream in streams:
        lasts[stream[0]] = stream
    files = list(lasts)
    out = []
    for path, text, line, target in [lasts[f] for f in files[-2:]] if len(files) >= 2 else []:
        rows = text.split("\n")
        indent = target[: len(target) - len(target.lstrip())]
        out.append((path, "\n".join(rows[:line] + [target, indent] + rows[line + 1 :]), line + 1, indent))
    return out


async def replay(service: CompletionService, streams: list[tuple[Path, str, int, str]], keystrokes: int,
                  per_line: int, max_model_calls: int | None = None, typing: float = 0.0) -> list[dict[str, Any]]:
    """Type the streams one keystroke at a time, each after the suggestion for the one before and `typing` seconds
    more (the user's typing speed; untimed), and record each keystroke's time to suggestion."""
    samples: list[dict[str, Any]] = []
    state = {"version": 0}

    async def ask(path: Path, rows: list[str], line: int, body: str, n: int, **flags: bool) -> None:
        uri = path.as_uri()
        state["version"] += 1
        version = state["version"]
        doc = "\n".join(rows)
        service.notify_change(uri, version)
        started = time.perf_counter()
        try:
            s = await service.complete(uri, path, doc, version, line, len(rows[line]))
        except GreenpatchError:  # a failed model call shows nothing, as in the editor
            s = None
        elapsed = time.perf_counter() - started
        samples.append({
            "seconds": elapsed, "next_line": False, "back": False,
            "model": bool(s is not None and not s.cached), "shown": bool(s and s.shown),
            # shown, and its first line is the rest of the line as the file has it; how much of it was
            "right": bool(s and s.shown and s.text.split("\n", 1)[0].rstrip() == body[n:].rstrip()),
            "chars": len(s.text.split("\n", 1)[0].rstrip()) if s and s.shown else 0,
            "typed": len(os.path.commonprefix([s.text.split("\n", 1)[0].rstrip(), body[n:]])) if s and s.shown
            else 0,
            "reused": s.reused_tokens if s else 0, "prompt": s.prompt_tokens if s else 0, "first": n == 0,
            "sampled": s.sampled if s else 0, "model_seconds": round(s.model_seconds, 4) if s else 0.0,
            "mode": s.mode if s else "", "file": path.name, "line": line, "typed_chars": n, **flags,
        })
        if typing > 0:
            await asyncio.sleep(typing)

    previous: tuple[Path, int] | None = None
    done = False
    for path, text, line, target in streams:
        rows = text.split("\n")
        indent = rows[line]
        body = target[len(indent) :]
        # the line of code right after the last one: the cursor moved down, only the line above changed
        next_line = previous is not None and previous[0] == path and 0 < line - previous[1] <= 3
        for n in range(min(len(body), per_line) + 1):
            done = sum(not x["first"] for x in samples) >= keystrokes or (
                max_model_calls is not None and sum(x["model"] for x in samples) >= max_model_calls)
            if done:
                break
            rows[line] = indent + body[:n]
            # The first request at a new place (the cursor moved to another line) is reported on its own: it
            # evaluates what changed since the last place, then typing along the line reuses it.
            await ask(path, rows, line, body, n, next_line=n == 0 and next_line)
        if done:
            break
        previous = (path, line)
    if not done:
        for path, text, line, target in revisits(streams):
            await ask(path, text.split("\n"), line, target, len(target), first=True, back=True)
    return samples
