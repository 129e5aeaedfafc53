"""Inline completion: debounce, cache, typed-along reuse, the model call, post-filters and the confidence gate.

The LSP handler calls `complete()` per request and `notify_change()` per didChange; both run on the event loop.
The model runs on the engine worker's thread; a newer version of the document cancels older work at once.
Show a suggestion only when `suggestion.shown` (non-empty text that passed the filters and the gate).
The line after a finished one (a shown line suggestion being typed along, or the cursor resting at the end of a
line) gets its suggestion ahead, as it will be once Enter is pressed: while the engine is idle with
`completions.prepareAhead` (_suggest_ahead, stopped by any other job), or at once with `completions.prefetch`
(_prefetch_after). A place whose full prompt is not evaluated yet is answered from a short one first (_short).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from greenpatch.cancel import CancelToken, LinkedToken
from greenpatch.completion import alternatives, body, examples
from greenpatch.completion.ahead import Ahead, OnPreparing, Place
from greenpatch.completion.cache import Cached, SuggestionCache, TypedAlong
from greenpatch.completion.feedback import FeedbackLog
from greenpatch.completion.filters import (
    SHORT_PROMPT_CUT,
    SHOW_ALL,
    confident_end,
    indent_after_enter,
    passes_gate,
    post_filter,
)
from greenpatch.completion.prompt import CompletionRequest, build_request, short_request, wants_block
from greenpatch.config import CompletionSettings
from greenpatch.context.builder import HeldContext, RecentEdits, SymbolIndex, split_at
from greenpatch.engine.base import Engine, Generation
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import Cancelled, GreenpatchError

log = logging.getLogger(__name__)


@dataclass
class Suggestion:
    text: str
    mean_logprob: float | None
    cached: bool
    seconds: float
    shown: bool  # passed the filters and the gate: the only ones an editor should display
    mode: str = "line"
    prompt_tokens: int = 0
    reused_tokens: int = 0
    raw: str = ""  # what the model produced before the filters (for --verbose and the benchmark)
    model_seconds: float = 0.0
    logprobs: list[float] | None = None  # per generated token (for the benchmark's gate analysis)
    end_logprob: float | None = None  # how likely the fill ends after the text (see completion/alternatives.py)
    sampled: int = 0  # lines sampled to find a better one than the model's first choice
    examples: str = ""  # what the function's docstring examples said of it (Cached.examples)
    # the suggestion before the examples judged it: its text, mean and end log-probabilities (for the benchmark)
    unjudged: tuple[str, float | None, float | None] | None = None
    # "rest": the rest of the suggestion just made here, being typed along; "whole": that suggestion typed to its end
    along: str = ""
    ahead: bool = False  # computed ahead as the next line (see _prefetch_after)
    token_ends: list[int] | None = None  # where each token of `logprobs` ends in `text` (for the benchmark)
    short: bool = False  # made from a short prompt: the place's full one was not evaluated yet (see _short)


class CompletionService:
    def __init__(
        self,
        worker: EngineWorker,
        settings: CompletionSettings,
        index: SymbolIndex | None = None,
        root: Path | None = None,
        *,
        trusted: bool = True,
        python: str = "",
    ) -> None:
        self.worker = worker
        self.settings = settings
        self.index = index
        self.root = root or (index.root if index is not None else None)
        # docstring examples run only in a trusted workspace, under its interpreter (completion/examples.py)
        self.trusted = trusted
        self.python = python or sys.executable
        self.cache = SuggestionCache()
        self.typed = TypedAlong()
        self.recent = RecentEdits()
        self.held = HeldContext()
        self.model_calls = 0
        self._versions: dict[str, int] = {}
        self._inflight: dict[str, list[tuple[int, CancelToken]]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._prefetch: _Prefetch | None = None
        self.prefetches = 0  # next-line suggestions computed ahead (see _prefetch_after)
        self.suggested_ahead = 0  # next-line suggestions computed ahead while idle (see _suggest_ahead)
        self._suggesting: tuple[tuple[str, str, str], asyncio.Event] | None = None
        # what the user did with earlier suggestions: the gate's threshold with completions.acceptTarget
        self.feedback: FeedbackLog | None = None
        self.ahead = Ahead(worker, self._request_at, shorten=self._short, suggest=self._suggest_ahead)
        # (version, line, col) of the last request or preparation in each document
        self._places: dict[str, tuple[int, int, int]] = {}

    def threshold(self) -> float:
        """The confidence gate's threshold: the fixed setting, or calibrated on what this user accepted."""
        if self.feedback is None or self.settings.accept_target <= 0:
            return self.settings.gate_threshold
        return self.feedback.threshold(self.settings.accept_target, self.settings.gate_threshold)

    # --- document events ------------------------------------------------------------------------------------

    def notify_change(self, uri: str, version: int) -> None:
        """A new version of `uri` exists: work for older versions is cancelled and its results dropped."""
        if version > self._versions.get(uri, -(1 << 62)):
            self._versions[uri] = version
        for v, token in self._inflight.get(uri, []):
            if v < version:
                token.cancel()
        event = self._changed.get(uri)
        if event is not None:
            event.set()

    def on_preparing(self, callback: OnPreparing | None) -> None:
        """Tell `callback` when a place's preparation ahead starts and ends (the editor's status bar)."""
        self.ahead.on_preparing = callback

    def prepare_at(self, uri: str, path: Path | None, text: str, version: int, line: int, col: int,
                   reason: str) -> None:
        """The user is likely to type at (line, col) soon: evaluate that place's prompt while the engine is idle
        (see completion/ahead.py). An edit ("edit") counts only at a new line (typing along a line has its prompt), and
        the cursor where a request was just made (it rests where the user typed) prepares nothing: the request did,
        and the line after it may be being prepared."""
        if not (self.settings.enabled and self.settings.prepare_ahead) or self._stale(uri, version):
            return
        last = self._places.get(uri)
        if last is not None and (reason == "edit" and last[1] == line or last == (version, line, col)):
            return
        self._places[uri] = (version, line, col)
        if reason == "cursor":
            after = _after_enter(text, line, col)
            if after is not None:  # resting at the end of a finished line: Enter comes next
                text, line, col = after
                reason = "next line"
        self.ahead.at(Place(uri, path, text, version, line, col), reason)

    def _request_at(self, engine: Engine, place: Place) -> CompletionRequest:
        return build_request(place.text, place.line, place.col, self.settings, fim=engine.fim, path=place.path,
                             root=self.root, index=self.index, recent=self.recent, held=self.held)

    def _short(self, engine: Engine, request: CompletionRequest) -> CompletionRequest | None:
        """The short prompt to ask with first (completions.shortPromptTokens, with prepareAhead: the full one is
        then prepared behind it), when the engine would evaluate at least that many tokens more of the full one
        than of the short one; None: the full one."""
        tokens = self.settings.short_prompt_tokens
        if tokens <= 0 or not self.settings.prepare_ahead:
            return None
        full = engine.pending(request.prefix, request.suffix, context=request.context, max_tokens=request.max_tokens)
        if full < tokens:
            return None
        short = short_request(request, tokens)
        if short is None:
            return None
        quick = engine.pending(short.prefix, short.suffix, context=short.context, max_tokens=short.max_tokens)
        return short if full - quick >= tokens else None

    async def _suggest_ahead(self, place: Place, token: CancelToken) -> None:
        """The suggestion for `place` (the line after a finished one, once Enter is pressed), computed while the
        engine is idle and kept in the suggestion cache for the request there (which waits for it, see
        _join_suggesting); any other job cancels it."""
        full_prefix, full_suffix = split_at(place.text, place.line, place.col)
        mode = "block" if wants_block(place.text, place.line, place.col) else "line"
        if self.cache.get(full_prefix, full_suffix, mode) is not None:
            return
        done = asyncio.Event()
        self._suggesting = (SuggestionCache.key(full_prefix, full_suffix, mode), done)
        try:
            if await self._suggest(place, token, full_prefix, full_suffix, mode):
                self.suggested_ahead += 1
        finally:
            done.set()
            if self._suggesting is not None and self._suggesting[1] is done:
                self._suggesting = None

    async def _join_suggesting(self, key: tuple[str, str, str], token: CancelToken) -> bool:
        """Before a model call: wait for the suggestion being computed ahead when it is for this place (True; the
        request is not a job of its own, so it does not stop it), until it ends or the request is cancelled."""
        running = self._suggesting
        if running is None or running[0] != key:
            return False
        while not running[1].is_set() and not token.is_set():
            try:
                await asyncio.wait_for(running[1].wait(), 0.05)
            except asyncio.TimeoutError:
                pass
        return True

    async def _suggest(self, place: Place, token: CancelToken, full_prefix: str, full_suffix: str, mode: str,
                       idle: bool = True) -> bool:
        """Make the suggestion for `place` ahead of its request, into the cache (True), unless cancelled or failed."""
        try:
            request, generation, choice = await self._fill(place.path, place.text, place.line, place.col, mode, token,
                                                           time.monotonic(), idle=idle)
        except (Cancelled, GreenpatchError):
            return False
        if generation.stop_reason == "cancelled" or token.is_set():
            return False
        judged = await self._judge(place.path, full_prefix, full_suffix, request,
                                   _cached(request, generation, choice), choice, token)
        if judged is None or token.is_set():
            return False
        self.cache.put(full_prefix, full_suffix, mode, replace(judged[0], ahead=True))
        return True

    def update_settings(self, settings: CompletionSettings) -> None:
        self.settings = settings
        self.held.clear()
        self.close()  # work ahead under the old settings

    def forget(self, uri: str) -> None:
        """The document closed."""
        self._versions.pop(uri, None)
        self._places.pop(uri, None)
        self.typed.forget(uri)
        self.ahead.forget(uri)

    def _stale(self, uri: str, version: int) -> bool:
        return version < self._versions.get(uri, version)

    # --- completion -----------------------------------------------------------------------------------------

    async def complete(
        self,
        uri: str,
        path: Path | None,
        text: str,
        version: int,
        line: int,
        col: int,
        cancel: CancelToken | None = None,
        *,
        mode: str | None = None,
    ) -> Suggestion | None:
        """The suggestion at (line, col); None when there is nothing to say (stale, cancelled, superseded).
        Raises the GreenpatchError that kept the model from answering (not installed, failed)."""
        started, asked = time.perf_counter(), time.monotonic()
        if not self.settings.enabled or self._stale(uri, version):
            return None
        self.notify_change(uri, version)
        self._places[uri] = (version, line, col)
        full_prefix, full_suffix = split_at(text, line, col)
        if path is not None:
            self.recent.record(str(path), text)

        along = self.typed.match(uri, full_prefix, full_suffix, self._cut())
        if along is not None and not along.rest:
            # the suggestion typed (or accepted) whole: nothing to add, and no model call to cancel the next line
            # being computed ahead
            return Suggestion("", None, True, time.perf_counter() - started, False, mode or "line", along="whole")
        if along is not None and along.dropped:
            return Suggestion("", None, True, time.perf_counter() - started, False, mode or "line")
        if along is not None:
            shown = along.shown or passes_gate(along.mean_logprob, self.threshold())
            if shown and not along.shown:
                self.typed.shown(uri)
            rest = along.rest if along.sure is None else along.rest[: along.sure]
            return Suggestion(rest, along.mean_logprob, True, time.perf_counter() - started,
                              shown and bool(rest.strip()), mode or "line", along="rest")
        mode = mode or ("block" if wants_block(text, line, col) else "line")
        hit = self.cache.get(full_prefix, full_suffix, mode)
        if hit is not None:
            return self._answer(uri, path, full_prefix, full_suffix, mode, hit, started, version)

        token = LinkedToken(cancel)
        entry = (version, token)
        self._inflight.setdefault(uri, []).append(entry)
        try:
            if self.settings.debounce_ms > 0 and not await self._debounce(uri, version, token):
                return None
            key = SuggestionCache.key(full_prefix, full_suffix, mode)
            if await self._join_prefetch(key) or await self._join_suggesting(key, token):
                # the suggestion for this place was being computed ahead: it is in the cache now, unless cancelled
                hit = self.cache.get(full_prefix, full_suffix, mode)
                if token.is_set() or self._stale(uri, version):
                    return None
                if hit is not None:
                    return self._answer(uri, path, full_prefix, full_suffix, mode, hit, started, version)
            place = Place(uri, path, text, version, line, col)
            self.ahead.notify(place, True)  # the editor may say a suggestion is being prepared at the cursor
            try:
                self.model_calls += 1
                request, generation, choice = await self._fill(path, text, line, col, mode, token, asked)
            except Cancelled:
                return None
            except GreenpatchError as exc:
                log.debug("completion failed: %s", exc)
                raise  # the caller routes it by its kind (a model to install, an engine that failed)
            finally:
                self.ahead.notify(place, False)
            if generation.stop_reason == "cancelled" or token.is_set() or self._stale(uri, version):
                return None
            if request.short:  # the full prompt, behind the short one's answer, for the next keystroke here
                self.ahead.at(place, "behind")
            made = _cached(request, generation, choice)
            judged = await self._judge(path, full_prefix, full_suffix, request, made, choice, token)
            if judged is None or token.is_set() or self._stale(uri, version):
                return None
            unjudged = (made.text, made.mean_logprob, made.end_logprob)
            made, sampled = judged
            self.cache.put(full_prefix, full_suffix, mode, made)
            shown = self._remember(uri, path, full_prefix, full_suffix, mode, made, version)
            return Suggestion(
                self._sure_part(made), made.mean_logprob, False, time.perf_counter() - started, shown, mode,
                generation.prompt_tokens, generation.reused_tokens, generation.text, generation.seconds,
                made.logprobs, made.end_logprob, sampled, made.examples, unjudged, token_ends=made.token_ends,
                short=request.short,
            )
        finally:
            self._inflight[uri].remove(entry)

    async def _fill(self, path: Path | None, text: str, line: int, col: int, mode: str, token: CancelToken,
                    asked: float, idle: bool = False) -> tuple[CompletionRequest, Generation, alternatives.Choice | None]:
        """The model call on the engine's worker: the request built there (the repo context needs the index), the
        generation, and the better line chosen where the first one did not close the gap (or the line with the body
        it opens, see completion/body.py)."""
        request_box: list[CompletionRequest] = []
        choice_box: list[alternatives.Choice] = []

        def job(engine: Engine) -> Generation:
            request = build_request(
                text, line, col, self.settings, fim=engine.fim, path=path, root=self.root,
                index=self.index, recent=self.recent, held=self.held, mode=mode,
            )
            request = self._short(engine, request) or request
            request_box.append(request)
            if request.mode == "block" and self.settings.block_seconds > 0:
                # the user waits from the request on: show the complete lines there are when time is up
                token.wind_down_at = asked + self.settings.block_seconds
            check = alternatives.ends_matter(request)
            greedy = engine.infill(request.prefix, request.suffix, context=request.context,
                                   max_tokens=request.max_tokens, stop=request.stop, cancel=token,
                                   code_first=request.code_first, end_check=check)
            if body.needs_body(greedy, request) and not token.is_set():
                if self.settings.block_seconds > 0:  # the body is a block: a block's time budget, from here (the line
                    # may have taken it all evaluating a new prompt)
                    token.wind_down_at = time.monotonic() + self.settings.block_seconds
                joined, filtered = body.with_body(engine, request, greedy, self.settings.max_tokens, token, check)
                choice_box.append(alternatives.Choice(joined, filtered, 0))
                return joined
            if not check or self.settings.alternatives <= 0:
                return greedy
            choice = alternatives.better_line(engine, request, greedy, self.settings.alternatives, token)
            choice_box.append(choice)
            return choice.generation

        generation = await (self.worker.run_idle(job, token) if idle else self.worker.run(job, token))
        return request_box[0], generation, (choice_box[0] if choice_box else None)

    async def _judge(self, path: Path | None, full_prefix: str, full_suffix: str, request: CompletionRequest,
                     made: Cached, choice: alternatives.Choice | None,
                     token: CancelToken) -> tuple[Cached, int] | None:
        """Where the function at the cursor has docstring examples, let them judge the suggestion (see
        completion/examples.py): the suggestion as it stands, verified, another line that passes them, or
        nothing; and how many lines were sampled. None: cancelled."""
        sampled = choice.sampled if choice else 0
        if not (made.text and self.settings.examples and self.trusted) or ">>>" not in full_prefix:
            return made, sampled
        first = full_prefix.count("\n")
        outcome = await self._examples(path, full_prefix, made.text, full_suffix, first, token)
        if outcome is None:
            return made, sampled  # no examples can judge it here
        if outcome == "cancelled":
            return None
        if outcome != "failed":
            return replace(made, examples=outcome), sampled
        # a whole function whose examples fail with this line: the likeliest other line whose examples pass; where
        # none does, the line is withheld (see completion/examples.py)
        candidates = list(choice.candidates) if choice and choice.candidates else []
        if not candidates and request.mode == "line" and self.settings.alternatives > 0:
            skip = {made.text}
            found, count, _ = await self.worker.run(
                lambda engine: alternatives.sampled_lines(engine, request, self.settings.alternatives, token, skip),
                token)
            candidates, sampled = found, sampled + count
        for generation, text in candidates:
            if text == made.text:
                continue
            outcome = await self._examples(path, full_prefix, text, full_suffix, first, token)
            if outcome == "cancelled":
                return None
            if outcome == "passed":
                return Cached(text, generation.mean_logprob, True, generation.logprobs, generation.token_ends,
                              generation.end_logprob, examples="replaced"), sampled
        return replace(made, examples="failed"), sampled

    async def _examples(self, path: Path | None, full_prefix: str, text: str, full_suffix: str, first: int,
                        token: CancelToken) -> str | None:
        """Run the docstring examples with `text` at the cursor: their verdict, or None where they cannot judge it
        (no examples there, a module that does its work at import, a function still being written: it fails its
        examples whatever the line, so the run would only cost the user its wait)."""
        document = full_prefix + text + full_suffix
        found = examples.target(document, first, first + text.count("\n"))
        if found is None or not found.whole:
            return None
        from greenpatch.verify.examples import run_examples

        run = await asyncio.to_thread(run_examples, document, found.qualname, path=path, root=self.root,
                                      python=self.python, timeout=self.settings.examples_seconds, cancel=token)
        log.debug("examples of %s: %s (%.2f s)", found.qualname, run.verdict, run.seconds)
        return run.verdict

    def _remember(self, uri: str, path: Path | None, full_prefix: str, full_suffix: str, mode: str,
                  made: Cached, version: int = 0) -> bool:
        """Gate a suggestion made for the cursor, keep it for typing along, and compute the next line ahead when it
        is shown. Whether it is shown."""
        passed = bool(made.text) and made.examples != "failed" and passes_gate(
            made.mean_logprob, self.threshold(), made.end_logprob)
        sure = self._sure_part(made)
        shown = passed and bool(sure.strip())
        if made.text and made.examples == "failed":
            # typing along it leads to the same file, whose examples fail: nothing to show there either
            self.typed.remember_dropped(uri, full_prefix, full_suffix, made.text)
        elif made.text:
            self.typed.remember(uri, full_prefix, full_suffix, made.text, made.mean_logprob, shown=passed,
                                logprobs=made.logprobs, token_ends=made.token_ends, short=made.short)
        else:
            self.typed.remember_dropped(uri, full_prefix, full_suffix, made.dropped)
        if shown and sure == made.text:  # a suggestion shown only in part is not the line accepted whole
            self._prefetch_after(path, full_prefix, full_suffix, mode, made.text, uri, version)
        return shown

    def _cut(self) -> float | None:
        return self.settings.cut_logprob if self.settings.cut_logprob > SHOW_ALL else None

    def _sure_part(self, made: Cached) -> str:
        """What is shown of a suggestion: up to its first unsure token (completions.cutLogprob). The whole text
        stays remembered, so that typing or accepting that far shows the rest once it is sure."""
        cut = self._cut()
        if cut is None:
            return made.text
        if made.short:  # no repo context, a few lines: its guesses go wrong sooner
            cut = max(cut, SHORT_PROMPT_CUT)
        return made.text[: confident_end(made.logprobs, made.token_ends, 0, cut, len(made.text))]

    def _answer(self, uri: str, path: Path | None, full_prefix: str, full_suffix: str, mode: str, hit: Cached,
                started: float, version: int = 0) -> Suggestion:
        shown = self._remember(uri, path, full_prefix, full_suffix, mode, hit, version)
        return Suggestion(self._sure_part(hit), hit.mean_logprob, True, time.perf_counter() - started, shown, mode,
                          logprobs=hit.logprobs, end_logprob=hit.end_logprob, examples=hit.examples, ahead=hit.ahead,
                          token_ends=hit.token_ends)

    # --- the next line, ahead of time ---------------------------------------------------------------------------

    def _prefetch_after(self, path: Path | None, full_prefix: str, full_suffix: str, mode: str, text: str,
                        uri: str = "", version: int = 0) -> None:
        """While the user reads a line suggestion that ends the line (and types along it, which needs no model),
        get the line after it ready as it will be once they accept it and press Enter: the engine is idle meanwhile.
        With `completions.prefetch` its suggestion is computed and lands in the suggestion cache (a request for any
        other place cancels it); otherwise its prompt is prepared (completion/ahead.py)."""
        if mode != "line" or "\n" in text or full_suffix.partition("\n")[0]:
            return  # Enter goes at the end of the line: only where nothing follows the cursor on its line
        line_text = full_prefix.rsplit("\n", 1)[-1] + text
        indent = indent_after_enter(line_text, full_prefix[-4000:])
        prefix = full_prefix + text + "\n" + indent
        document = prefix + full_suffix
        line, col = prefix.count("\n"), len(indent)
        if not self.settings.prefetch:
            if uri and self.settings.prepare_ahead:
                self.ahead.at(Place(uri, path, document, version, line, col), "next line")
            return
        next_mode = "block" if wants_block(document, line, col) else "line"
        key = SuggestionCache.key(prefix, full_suffix, next_mode)
        running = self._prefetch
        if running is not None and running.key == key:
            return
        if self.cache.get(prefix, full_suffix, next_mode) is not None:
            return
        if running is not None:
            running.token.cancel()
        token = CancelToken()

        place = Place(uri, path, document, version, line, col)
        ahead = self._suggest(place, token, prefix, full_suffix, next_mode, idle=False)
        self.prefetches += 1
        self._prefetch = _Prefetch(key, token, asyncio.get_running_loop().create_task(ahead))

    async def _join_prefetch(self, key: tuple[str, str, str]) -> bool:
        """Before a model call: wait for the suggestion being computed ahead when it is for this place (True), else
        cancel it so that the engine is free at once."""
        running = self._prefetch
        if running is None or running.task.done():
            return False
        if running.key != key:
            running.token.cancel()
            return False
        await asyncio.wait({running.task})  # a cancelled request does not cancel the work it waited on
        return True

    def close(self) -> None:
        """Stop the work done ahead (the worker is the caller's)."""
        if self._prefetch is not None:
            self._prefetch.token.cancel()
        self.ahead.stop()

    async def _debounce(self, uri: str, version: int, token: CancelToken) -> bool:
        """Wait debounce_ms; False when a newer version or a cancel arrived meanwhile."""
        event = self._changed.setdefault(uri, asyncio.Event())
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), self.settings.debounce_ms / 1000)
        except asyncio.TimeoutError:
            pass
        return not (token.is_set() or self._stale(uri, version))


@dataclass
class _Prefetch:
    key: tuple[str, str, str]  # the suggestion cache's key of the place computed ahead
    token: CancelToken
    task: asyncio.Task[bool]  # whether the suggestion landed in the cache


# a line ending so is not finished: the user goes on typing it, Enter would not come next
_UNFINISHED = tuple("([{,=+-*/%<>&|^~.@\\")


def _after_enter(text: str, line: int, col: int) -> tuple[str, int, int] | None:
    """The document and cursor as they will be once Enter is pressed, where the cursor is at the end of a finished
    line of code with nothing after it on the line; else None."""
    rows = text.split("\n")
    if line >= len(rows) or col != len(rows[line]):
        return None
    current = rows[line]
    code = current.split("#", 1)[0].rstrip()
    if not code.strip() or code.endswith(_UNFINISHED) or code.lstrip().startswith(("#", '"', "'")):
        return None
    indent = indent_after_enter(current, "\n".join(rows[max(0, line - 200) : line]))
    rows.insert(line + 1, indent)
    return "\n".join(rows), line + 1, len(indent)


def _cached(request: CompletionRequest, generation: Generation, choice: alternatives.Choice | None) -> Cached:
    """What a model call leaves for the cache: the text after the filters (empty: nothing to show), its confidence,
    and a whole line the filters dropped (for typing along it, see TypedAlong)."""
    dropped = ""
    if request.mode == "line" and generation.stop_reason == "length":
        text = ""  # a line the token limit cut off mid-way is not a complete unit: show nothing rather than half
    elif choice is not None and choice.text is not None:
        text = choice.text  # better_line filtered what it chose
    else:
        text = post_filter(generation.text, request) or ""
    if not text and request.mode == "line" and generation.stop_reason in ("stop", "eos"):
        dropped = generation.text.split("\n", 1)[0]
    return Cached(text, generation.mean_logprob, bool(text), generation.logprobs, generation.token_ends,
                  generation.end_logprob, dropped, short=request.short)


def describe(s: Suggestion | None) -> dict[str, Any]:
    """A plain dict of a suggestion (for --verbose and JSON reports)."""
    if s is None:
        return {"text": None}
    return {
        "text": s.text, "shown": s.shown, "mean_logprob": s.mean_logprob, "cached": s.cached,
        "seconds": round(s.seconds, 4), "model_seconds": round(s.model_seconds, 4), "mode": s.mode,
        "prompt_tokens": s.prompt_tokens, "reused_tokens": s.reused_tokens, "end_logprob": s.end_logprob,
        "sampled": s.sampled, "examples": s.examples,
    }
