"""`greenpatch bench complete --ahead`: the first suggestion at a place, with and without preparing ahead.

An event replay of what an editor sends (see completion/ahead.py): a file opened, the cursor resting, typing, Enter
after accepting a line. For each file, from an empty KV cache, the same events run twice, without and with
`completions.prepareAhead`, one after the other (so both see the same machine load), through the real
CompletionService on the warm engine, with the repo context of the file's project. Each file has three places (a
fifth, half and four fifths of the way down its lines of code): their lines are cut to their indentation, as lines
about to be written. The events, timed from the request (the client's debounce is waited, untimed, as the server
sees it: the didChange first, the request after it):

- "open": the file is opened with the cursor at the first place (VS Code sends its cursor at once), `rest` seconds
  pass, the first character of the line is typed.
- "rest": the cursor moves to the third place and rests `rest` seconds, then the first character is typed.
- "cold": a jump to the second place and a character typed at once (no warning but the didChange).
- "next line": the line there is finished (the suggestion accepted where it is the file's line, else the user types
  it), `rest` seconds pass, Enter: the first request on the new line below.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenpatch.completion.filters import indent_after_enter
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine.base import Engine
from greenpatch.engine.worker import EngineWorker

KINDS = ("open", "rest", "cold", "next line")
DEBOUNCE = 0.12  # the client's wait between a didChange and its request (completions.debounceMs)


@dataclass
class _Doc:
    path: Path
    rows: list[str]
    version: int = 1

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    @property
    def text(self) -> str:
        return "\n".join(self.rows)


def places(rows: list[str]) -> list[int]:
    """Three lines of code far apart (a fifth, half, four fifths of the way down), the same rule as the typing
    replay's target lines."""
    good = [i for i, r in enumerate(rows) if 24 <= len(r.strip()) <= 90 and not r.strip().startswith(("#", '"', "'"))
            and i > 20]
    if len(good) < 3:
        return []
    return [good[len(good) // 5], good[len(good) // 2], good[4 * len(good) // 5]]


async def _events(service: CompletionService, path: Path, rest: float) -> list[dict[str, Any]]:
    rows = path.read_text(encoding="utf-8").split("\n")
    chosen = places(rows)
    if not chosen:
        return []
    targets = {line: rows[line] for line in chosen}
    for line in chosen:
        rows[line] = rows[line][: len(rows[line]) - len(rows[line].lstrip())]
    doc = _Doc(path, rows)
    out: list[dict[str, Any]] = []

    def cursor(line: int, reason: str) -> None:
        service.prepare_at(doc.uri, path, doc.text, doc.version, line, len(doc.rows[line]), reason)

    async def edit(line: int, new: str) -> None:
        doc.rows[line] = new
        doc.version += 1
        service.notify_change(doc.uri, doc.version)
        cursor(line, "edit")
        await asyncio.sleep(DEBOUNCE)

    async def ask(kind: str, line: int) -> Any:
        started = time.perf_counter()
        s = await service.complete(doc.uri, path, doc.text, doc.version, line, len(doc.rows[line]))
        out.append({"kind": kind, "seconds": round(time.perf_counter() - started, 4), "file": path.name,
                    "line": line, "model": bool(s and not s.cached), "shown": bool(s and s.shown),
                    "prompt": s.prompt_tokens if s else 0, "reused": s.reused_tokens if s else 0,
                    "short": bool(s and s.short)})
        return s

    first, second, third = chosen
    cursor(first, "cursor")  # open: the editor reports its cursor at once
    await asyncio.sleep(rest)
    await edit(first, doc.rows[first] + targets[first].lstrip()[:1])
    await ask("open", first)
    cursor(third, "cursor")
    await asyncio.sleep(rest)
    await edit(third, doc.rows[third] + targets[third].lstrip()[:1])
    await ask("rest", third)
    await edit(second, doc.rows[second] + targets[second].lstrip()[:1])
    await ask("cold", second)
    # the user takes the suggestion where it is their line, or types their line: either way the line is the file's
    # (a suggestion shown in part, completions.cutLogprob, is not a line to press Enter after)
    line_text = targets[second]
    await edit(second, line_text)
    cursor(second, "cursor")  # the cursor rests at the end of the finished line (VS Code: greenpatch/cursor)
    await asyncio.sleep(rest)
    indent = indent_after_enter(line_text, doc.text)
    doc.rows.insert(second + 1, indent)
    doc.version += 1
    service.notify_change(doc.uri, doc.version)
    cursor(second + 1, "edit")
    await asyncio.sleep(DEBOUNCE)
    await ask("next line", second + 1)
    await service.ahead.wait()
    return out


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        times = sorted(s["seconds"] for s in samples if s["kind"] == kind)
        key = kind.replace(" ", "_")
        out[f"{key}_n"] = len(times)
        out[f"{key}_p50"] = round(statistics.median(times), 3) if times else None
        out[f"{key}_max"] = times[-1] if times else None
    return out


def replay(engine: Engine, files: list[Path], rest_ms: int) -> dict[str, Any]:
    """The event replay per file, without then with preparing ahead; p50 per kind of first request and ratios."""
    from greenpatch.completion.command import _index, find_root

    rest = rest_ms / 1000
    samples: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    counts: dict[str, int] = {}
    indexes: dict[Path, Any] = {}
    started = time.perf_counter()
    for path in files:
        root = find_root(path)
        if root not in indexes:
            indexes[root] = _index(root)  # untimed, as the server has it when the user starts
        for variant in ("without", "with"):
            clear = getattr(engine, "_clear", None)
            if clear is not None:
                clear()  # both variants start from an empty KV cache with nothing parked
            worker = EngineWorker(lambda: engine, owns_engine=False)
            settings = CompletionSettings(debounce_ms=0, prepare_ahead=variant == "with")
            service = CompletionService(worker, settings, index=indexes[root], root=root)
            try:
                samples[variant] += asyncio.run(_events(service, path, rest))
            finally:
                worker.close()
            if variant == "with":
                for key, value in {**service.ahead.counts, **service.ahead.by_reason}.items():
                    counts[key] = counts.get(key, 0) + value
            # each file's events as they come: a long run that is stopped still says what it measured
            done = [{k: e[k] for k in ("kind", "seconds", "prompt", "reused", "shown", "short")}
                    for e in samples[variant] if e["file"] == path.name]
            print(f"bench complete --ahead: {path.name} {variant} at {time.perf_counter() - started:.0f} s: "
                  f"{json.dumps(done)}", file=sys.stderr)
    without, with_ = _summary(samples["without"]), _summary(samples["with"])
    out: dict[str, Any] = {"files": [str(f) for f in files], "rest_ms": rest_ms, "without": without, "with": with_,
                           "work_ahead": counts, "events": samples,
                           "parked_mb": round(getattr(engine, "parked_bytes", 0) / 1e6, 1)}
    for kind in KINDS:
        key = kind.replace(" ", "_")
        a, b = without[f"{key}_p50"], with_[f"{key}_p50"]
        out[f"speedup_{key}_p50"] = round(a / b, 2) if a and b else None
    return out
