"""Prompts prepared ahead: while the engine is idle, evaluate the prompt for the place the user is likely to type next.

The first suggestion at a place waits for its whole prompt (~1,000 tokens: several seconds on 2 cores); typing along
then reuses it. The user gives warnings of where they will type before they do: a file opened, the cursor resting
somewhere (VS Code sends `greenpatch/cursor`), the first edit at a new place (didChange comes before the debounced
request), the line after a suggestion being read (Enter goes there once it is accepted). At each, the prompt that
request will build is evaluated ahead (`Engine.prepare`); the request then reuses it, or finds it parked if the user
went elsewhere first (engine/parking.py).

A warning too short to evaluate the whole prompt (~1,000 tokens: a 2 s rest prepares ~200 with the default model on
2 cores) still helps: a place is prepared short prompt first (completion/prompt.py short_request: the lines around
the cursor, no repo context), which is what a request there asks with while the full prompt is not evaluated
(CompletionService._short); the full prompt comes after it, and "behind" a short request's answer, for the next
keystroke there. For the line after a finished one (Enter comes next), the whole suggestion is made ahead too, into
the suggestion cache (CompletionService._suggest_ahead).

Work ahead never delays a request: it runs as the worker's idle job, which any other job cancels, and the engine
checks its token between prompt steps (~0.25 s of the default model on 2 cores, see LlamaEngine.prepare). One place
is prepared at a time: a newer warning replaces the older one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from greenpatch.cancel import CancelToken
from greenpatch.completion.prompt import CompletionRequest
from greenpatch.engine.base import Engine
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import Cancelled, GreenpatchError

log = logging.getLogger(__name__)

# Why a place is prepared (the benchmark and the log count them by it)
# ("behind": the full prompt at a place whose first suggestion came from a short one)
REASONS = ("open", "cursor", "edit", "next line", "behind")


@dataclass(frozen=True)
class Place:
    """A document version and a cursor in it (`col` in Python characters)."""

    uri: str
    path: Path | None
    text: str
    version: int
    line: int
    col: int

    @property
    def key(self) -> tuple[str, int, int, int]:
        """The same place in the same text, whatever the version (Enter pressed where its line was prepared)."""
        return self.uri, hash(self.text), self.line, self.col


# (place, busy): a place's preparation started (True) or ended (False); the editor may show it (greenpatch/preparing)
OnPreparing = Callable[[Place, bool], None]
# builds the request a completion at the place would make (on the engine's thread: it needs the engine's FIM format)
BuildRequest = Callable[[Engine, Place], CompletionRequest]
# the short prompt a request there would ask with first, or None (CompletionService._short)
Shorten = Callable[[Engine, CompletionRequest], "CompletionRequest | None"]
# computes a place's suggestion while idle, into the suggestion cache (CompletionService._suggest_ahead)
Suggest = Callable[[Place, CancelToken], Awaitable[None]]


@dataclass
class _Running:
    place: Place
    reason: str
    token: CancelToken
    task: asyncio.Task[None]


class Ahead:
    """Schedules the preparation of one place at a time on the worker's idle slot."""

    def __init__(self, worker: EngineWorker, build: BuildRequest, on_preparing: OnPreparing | None = None,
                 shorten: Shorten | None = None, suggest: Suggest | None = None) -> None:
        self.worker = worker
        self.build = build
        self.shorten = shorten
        self.suggest = suggest
        self.on_preparing = on_preparing
        self._running: _Running | None = None
        self._done: tuple[str, int, int, int] | None = None  # the last place evaluated to its end
        self.counts = {"asked": 0, "prepared": 0, "preempted": 0, "skipped": 0}
        self.by_reason = {reason: 0 for reason in REASONS}

    def at(self, place: Place, reason: str) -> None:
        """Prepare `place` while the engine is idle (replacing a place being prepared); called on the event loop."""
        self.counts["asked"] += 1
        running = self._running
        if place.key == self._done or (running is not None and running.place.key == place.key
                                       and not running.task.done()):
            self.counts["skipped"] += 1
            return
        if running is not None:
            running.token.cancel()
        token = CancelToken()
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        task = asyncio.get_running_loop().create_task(self._prepare(place, token, reason))
        self._running = _Running(place, reason, token, task)

    def busy_at(self, uri: str) -> bool:
        running = self._running
        return running is not None and running.place.uri == uri and not running.task.done()

    def stop(self) -> None:
        """Cancel the work ahead (the settings changed, the document closed, the server stops)."""
        if self._running is not None:
            self._running.token.cancel()
        self._done = None

    def forget(self, uri: str) -> None:
        running = self._running
        if running is not None and running.place.uri == uri:
            running.token.cancel()

    async def wait(self) -> None:
        """Until the work ahead in progress has ended (tests and the benchmark)."""
        running = self._running
        if running is not None:
            await asyncio.wait({running.task})

    async def _prepare(self, place: Place, token: CancelToken, reason: str = "") -> None:
        def first(engine: Engine) -> tuple[int, bool]:
            """The prompt a request there would ask with now (the short one, while the full one is not held)."""
            request = self.build(engine, place)
            short = self.shorten(engine, request) if self.shorten is not None else None
            ask = short or request
            held = engine.prepare(ask.prefix, ask.suffix, context=ask.context, max_tokens=ask.max_tokens,
                                  cancel=token)
            return held, short is not None

        def full(engine: Engine) -> int:
            request = self.build(engine, place)
            return engine.prepare(request.prefix, request.suffix, context=request.context,
                                  max_tokens=request.max_tokens, cancel=token)

        self.notify(place, True)
        try:
            held, short = await self.worker.run_idle(first, token)
            if reason == "next line" and self.suggest is not None and not token.is_set():
                await self.suggest(place, token)  # Enter comes next: its suggestion, ready in the cache
            if short and not token.is_set():
                held = await self.worker.run_idle(full, token)  # the full prompt behind it
        except (Cancelled, asyncio.CancelledError):
            self.counts["preempted"] += 1
            return
        except GreenpatchError as exc:  # a request at the place will report it
            log.debug("preparing ahead failed: %s", exc)
            return
        finally:
            self.notify(place, False)
        if not token.is_set():
            self._done = place.key
            self.counts["prepared"] += 1
            log.debug("prepared %s:%d:%d ahead (%d prompt tokens held)", place.uri, place.line, place.col, held)
        else:
            self.counts["preempted"] += 1

    def notify(self, place: Place, busy: bool) -> None:
        """Tell the editor that a suggestion is being prepared at `place` (ahead, or for a request) or no more."""
        if self.on_preparing is None:
            return
        try:
            self.on_preparing(place, busy)
        except Exception:  # a broken editor link must not stop the work
            log.exception("preparing callback failed")
