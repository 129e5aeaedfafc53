"""The in-process llama.cpp engine: with its helpers (engine/llama_*.py), the only code that imports llama_cpp.

The `Llama` object is used to load the model, tokenize and hold the context; decoding, KV-cache management,
sampling and stopping are done through the low-level API, because the engine needs what `Llama.generate`
does not give: a cancel check after every token, per-token log-probabilities of the raw distribution, and
llama.cpp-style chunk reuse of the KV cache (see `kvplan`). Not thread-safe: `EngineWorker` owns it.

Here: one generation with speculative drafts, the end check, and the Engine protocol. Each other part has a
module of its own: loading (llama_build.py), the vocabulary (llama_vocab.py), prompts and token healing
(llama_prompts.py), the KV cache and prompt evaluation (llama_kv.py), choosing tokens (llama_sampling.py),
samples decoded side by side (llama_batch.py).
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from greenpatch.errors import EngineNotInstalled, ModelError

try:
    import llama_cpp
except ImportError as exc:  # pragma: no cover - exercised when the [llm] extra is missing
    raise EngineNotInstalled(
        f"llama-cpp-python is not installed ({exc})", "install it with `pip install 'greenpatch[llm]'`"
    ) from None

import numpy as np

from greenpatch.engine.base import CancelToken, ChatMessage, EngineBase, FimFormat, Generation, kept_tokens
from greenpatch.engine.drafts import DraftLength, DraftSource
from greenpatch.engine.kvplan import DEFAULT_REUSE, MODES, ReusePlan, common_prefix
from greenpatch.engine.llama_batch import generate_many
from greenpatch.engine.llama_build import PARALLEL, extra_bufts, patched_defaults
from greenpatch.engine.llama_kv import PROMPT_STEP, KvCache
from greenpatch.engine.llama_prompts import ChatTemplate, healed, infill_tokens
from greenpatch.engine.llama_sampling import Stream, choose, logsumexp, take
from greenpatch.engine.llama_vocab import Vocabulary
from greenpatch.engine.parking import DEFAULT_BUDGET

log = logging.getLogger(__name__)

DEFAULT_CTX = 4096
# The step of a prompt evaluated ahead (`prepare`): a request waits for the step in progress before it starts, so it is
# short (~0.25 s of the default model on 2 cores); the 20 % it costs in speed is idle time's.
PREPARE_STEP = 32


class LlamaEngine(EngineBase):
    def __init__(
        self,
        path: Path,
        *,
        name: str = "",
        fim: FimFormat | None = None,
        threads: int = 0,
        n_ctx: int = DEFAULT_CTX,
        reuse: str = DEFAULT_REUSE,
        min_chunk: int = 12,
        speculate: bool = True,
        heal: bool = True,
        park_budget: int = DEFAULT_BUDGET,
    ) -> None:
        if reuse not in MODES:
            raise ValueError(f"reuse must be one of {MODES}")
        if not faulthandler.is_enabled():
            # A crash inside llama.cpp leaves the Python stacks on stderr (the editor's server log), not nothing.
            faulthandler.enable()
        self.name = name or path.stem
        self.path = path
        self.threads = threads or os.cpu_count() or 2
        self.reuse = reuse
        self.min_chunk = min_chunk
        started = time.perf_counter()
        repack = extra_bufts()
        try:
            with patched_defaults(repack):
                self._llm = llama_cpp.Llama(
                    model_path=str(path), n_ctx=n_ctx, n_batch=512, n_ubatch=512, n_threads=self.threads,
                    n_threads_batch=self.threads, logits_all=False, verbose=False,
                    # Repacked weights are copies: a mapped file would stay resident beside them (measured with the
                    # default model: RSS 1.95 GB mapped, 1.36 GB read in, same speed).
                    use_mmap=not repack,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"cannot load model {path}: {exc}", "is it a valid GGUF file? reinstall it") from None
        self.load_seconds = time.perf_counter() - started
        if not repack:
            log.info("weights are not repacked: this llama.cpp build uses AMX (see README, Models: a build without "
                     "AMX generates faster)")
        self.n_ctx = self._llm.n_ctx()
        self.n_vocab = self._llm.n_vocab()
        self._kv = KvCache(self._llm, park_budget)
        self.park = True  # keep prompts aside for a jump back (KvCache.prepare); the benchmark compares without
        self._vocab = Vocabulary(self._llm, self.name, fim)
        self.fim = self._vocab.fim
        self._chat = ChatTemplate(self._llm, self._vocab, self.name)
        self.speculate = speculate
        self.heal = heal  # token healing of a partial word or the spaces before the cursor (healing.py)
        self._drafts = DraftSource()
        self.draft_counts = {"drafted": 0, "accepted": 0}  # since load (the benchmark reports them)

    # --- tokens ---------------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self._vocab.tokenize(text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    # --- decoding -------------------------------------------------------------------------------------------

    def _prepare(self, prompt: list[int], mode: str, cancel: CancelToken | None = None,
                 step: int = PROMPT_STEP) -> ReusePlan | None:
        """Make the KV cache hold `prompt` (see KvCache.prepare); None when `cancel` was set on the way."""
        return self._kv.prepare(prompt, mode, self.min_chunk, self.park, cancel, step)

    def _clear(self) -> None:
        """Empty the KV cache, parked prompts included (benchmarks start each mode from here)."""
        self._kv.clear()

    @property
    def parked_bytes(self) -> int:
        """Memory the parked prompts hold (the benchmark reports it)."""
        return self._kv.parked.size

    @property
    def resumed(self) -> int:
        """Prompts resumed from a parked one since load (the benchmark reports it)."""
        return self._kv.resumed

    def _finish(self, stream: Stream, end_check: bool, prompt_tokens: int, reused: int, started: float,
                **extra: int) -> Generation:
        end_logprob = None
        if end_check and stream.reason in ("stop", "eos") and stream.text.strip() and stream.logits is not None:
            end_logprob = self._end_logprob(stream, stream.emitted[-1] if stream.reason == "stop" else None)
        text, logprobs, token_ends = stream.text, stream.logprobs, stream.token_ends
        if stream.cut is not None:
            cut = stream.cut
            n = kept_tokens(token_ends, cut)
            logprobs, token_ends, text = logprobs[:n], [min(e, cut) for e in token_ends[:n]], text[:cut]
        return Generation(text, logprobs, stream.reason or "length", prompt_tokens, reused,
                          time.perf_counter() - started, token_ends=token_ends, end_logprob=end_logprob, **extra)

    def _generate(
        self,
        prompt: list[int],
        *,
        max_tokens: int,
        stop: list[str] | None,
        temperature: float,
        seed: int | None,
        cancel: CancelToken | None,
        mode: str | None = None,
        code_first: bool = False,
        forced: bytes = b"",
        end_check: bool = False,
    ) -> Generation:
        """`forced`: text the generation must start with (token healing, see healing.py); it is not part of the
        text, log-probabilities or token limit returned. `end_check`: see `Engine.infill`."""
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            return Generation("", [], "cancelled", len(prompt), 0, 0.0)
        plan = self._prepare(prompt, mode or self.reuse, cancel)
        if plan is None:
            return Generation("", [], "cancelled", len(prompt), 0, time.perf_counter() - started)
        prompt_seconds = time.perf_counter() - started
        stream = Stream(forced, [s for s in (stop or []) if s], max_tokens, cancel, np.random.default_rng(seed),
                         start=len(prompt))
        # Speculative greedy decoding (see drafts.py): `pending` are batch indices whose logits are ready, the
        # first for the next token; `drafted` the draft tokens decoded after it, not yet confirmed.
        speculate = temperature <= 0 and self.speculate
        length = DraftLength()
        pending: list[int] = [-1]
        drafted: list[int] = []
        last_draft = 0  # length of the last draft decoded
        n_drafted = n_accepted = 0
        for _ in range(max_tokens + len(forced)):
            if cancel is not None and cancel.is_set():
                stream.reason = "cancelled"
                break
            token, logprob = choose(stream, self._kv.logits(pending.pop(0)), temperature, code_first, self._vocab)
            if token < 0 or take(stream, token, logprob, self._vocab):
                break
            if drafted:
                if drafted[0] == token:  # the draft was right: its token is decoded already
                    drafted.pop(0)
                    self._kv.cached.append(token)
                    n_accepted += 1
                    if not drafted:
                        length.taken(last_draft, last_draft)
                    continue
                length.taken(last_draft, last_draft - len(drafted))
                self._kv.drop_from(len(self._kv.cached))
                drafted, pending = [], []
            room = max_tokens - len(stream.logprobs) - 1
            draft = (self._drafts.propose(stream.emitted, min(length.value, room))
                     if speculate and not stream.healing else [])
            at = len(self._kv.cached)
            self._kv.decode([token, *draft], range(at, at + 1 + len(draft)), all_logits=bool(draft))
            self._kv.cached.append(token)
            pending = list(range(1 + len(draft))) if draft else [-1]
            drafted, last_draft = list(draft), len(draft)
            n_drafted += len(draft)
        if drafted:  # drafted tokens past the end of the generation leave the cache
            self._kv.drop_from(len(self._kv.cached))
        if speculate:
            self._drafts.remember(stream.emitted)
            self.draft_counts["drafted"] += n_drafted
            self.draft_counts["accepted"] += n_accepted
        gen = self._finish(stream, end_check, len(prompt), plan.reused, started, drafted_tokens=n_drafted,
                           accepted_tokens=n_accepted)
        gen.prompt_seconds = prompt_seconds
        return gen

    def _generate_many(
        self,
        prompt: list[int],
        seeds: Sequence[int],
        *,
        max_tokens: int,
        stop: list[str] | None,
        temperature: float,
        cancel: CancelToken | None,
        code_first: bool = False,
        forced: bytes = b"",
        end_check: bool = False,
    ) -> list[Generation]:
        """One sampled generation per seed, decoded side by side (see llama_batch.py)."""
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            return [Generation("", [], "cancelled", len(prompt), 0, 0.0) for _ in seeds]
        plan = self._prepare(prompt, self.reuse, cancel)
        if plan is None:
            return [Generation("", [], "cancelled", len(prompt), 0, time.perf_counter() - started) for _ in seeds]
        return generate_many(self._kv, self._vocab, prompt, seeds, max_tokens=max_tokens, stop=stop,
                             temperature=temperature, cancel=cancel, code_first=code_first, forced=forced,
                             finish=lambda s: self._finish(s, end_check, len(prompt), plan.reused, started))

    def _end_logprob(self, stream: Stream, stopped_by: int | None) -> float | None:
        """The log-probability that the fill ends where `stream` stopped: at the end of the text (the logits of
        the step that sampled the end), or after the token `stopped_by` carrying the line break. Text that token
        carries before its line break (`):\n` is one token) is decoded first, then dropped from the cache again."""
        assert stream.logits is not None
        stops = np.array(sorted(self._vocab.stop_ids), dtype=np.int64)
        if stopped_by is None:
            return logsumexp(stream.logits[stops]) - stream.norm
        piece = self._vocab.piece_bytes(stopped_by)
        at = piece.find(b"\n")
        if at < 0:
            return None
        if at == 0:
            return logsumexp(stream.logits[stops]) - stream.norm
        tokens = self._llm.tokenize(piece[:at], add_bos=False, special=False)
        position = stream.start + len(stream.emitted) - 1  # where the token carrying the break would have gone
        self._kv.decode(tokens, range(position, position + len(tokens)), seq=stream.seq)
        after = self._kv.logits()
        if not llama_cpp.llama_memory_seq_rm(self._kv.mem, stream.seq, position, -1):
            self._clear()
            raise ModelError("cannot remove the end check's tokens from the KV cache", "the cache was cleared")
        return logsumexp(after[stops]) - logsumexp(after)

    # --- Engine protocol ------------------------------------------------------------------------------------

    def infill(
        self,
        prefix: str,
        suffix: str,
        *,
        context: str = "",
        max_tokens: int = 64,
        stop: list[str] | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        cancel: CancelToken | None = None,
        reuse: str | None = None,
        code_first: bool = False,
        end_check: bool = False,
    ) -> Generation:
        prompt, forced = self._healed_prompt(prefix, suffix, context, max_tokens)
        return self._generate(prompt, max_tokens=max_tokens, stop=stop, temperature=temperature, seed=seed,
                              cancel=cancel, mode=reuse, code_first=code_first, forced=forced, end_check=end_check)

    def prepare(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64,
                cancel: CancelToken | None = None) -> int:
        """Evaluate the prompt `infill` would build for these arguments, generating nothing, in steps of
        PREPARE_STEP tokens so that `cancel` (a real request) stops it within ~0.25 s. What it evaluated stays in the
        cache, which the request reuses (or parks at a jump away). How many of the prompt's tokens the cache holds."""
        prompt, _ = self._healed_prompt(prefix, suffix, context, max_tokens)
        if cancel is not None and cancel.is_set():
            return common_prefix(self._kv.cached, prompt)
        self._prepare(prompt, self.reuse, cancel, step=PREPARE_STEP)
        return common_prefix(self._kv.cached, prompt)

    def pending(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64) -> int:
        """The prompt's tokens after the longest start of it the cache or a parked prompt holds (see KvCache.held)."""
        prompt, _ = self._healed_prompt(prefix, suffix, context, max_tokens)
        return len(prompt) - self._kv.held(prompt)

    def infill_many(
        self,
        prefix: str,
        suffix: str,
        seeds: Sequence[int],
        *,
        context: str = "",
        max_tokens: int = 64,
        stop: list[str] | None = None,
        temperature: float = 0.8,
        cancel: CancelToken | None = None,
        code_first: bool = False,
        end_check: bool = False,
    ) -> list[Generation]:
        """One sampled `infill` per seed, decoded side by side (see `_generate_many`); `seconds` of each is the
        time of the whole batch."""
        started = time.perf_counter()
        prompt, forced = self._healed_prompt(prefix, suffix, context, max_tokens)
        # each sequence needs cells of its own for its tokens (and the end check's): as many side by side as fit
        room = (self.n_ctx - len(prompt)) // (max_tokens + len(forced) + 8)
        group = max(1, min(PARALLEL, room))
        out: list[Generation] = []
        for start in range(0, len(seeds), group):
            out += self._generate_many(prompt, seeds[start : start + group], max_tokens=max_tokens, stop=stop,
                                       temperature=temperature, cancel=cancel, code_first=code_first,
                                       forced=forced, end_check=end_check)
        for g in out:
            g.seconds = time.perf_counter() - started
        return out

    def _healed_prompt(self, prefix: str, suffix: str, context: str, max_tokens: int) -> tuple[list[int], bytes]:
        """The infill prompt, less the tokens token healing takes back, and the text they spelled."""
        prompt = infill_tokens(self._vocab, self.n_ctx, prefix, suffix, context, max_tokens)
        return healed(self._vocab, prompt, prefix) if self.heal else (prompt, b"")

    def score(self, prefix: str, suffix: str, middle: str, *, context: str = "",
              cancel: CancelToken | None = None) -> list[float]:
        """Log-probabilities of `middle` filling the gap between prefix and suffix, one per token, then one for
        ending the fill there (teacher forcing; how natural the model finds a given fill)."""
        if self.fim is None:
            return []
        tokens = self.tokenize(middle) if middle else []
        prompt = infill_tokens(self._vocab, self.n_ctx, prefix, suffix, context, max_tokens=len(tokens) + 8)
        if self._prepare(prompt, "prefix", cancel) is None:
            return []
        stops = np.array(sorted(self._vocab.stop_ids), dtype=np.int64)
        out: list[float] = []
        for token in [*tokens, -1]:
            if cancel is not None and cancel.is_set():
                return []
            logits = self._kv.logits()
            norm = logsumexp(logits)
            if token < 0:  # the end of the fill: any token that ends it
                out.append(logsumexp(logits[stops]) - norm)
                break
            out.append(float(logits[token]) - norm)
            self._kv.decode([token], [len(self._kv.cached)])
            self._kv.cached.append(token)
        return out

    def complete(self, prompt: str, *, max_tokens: int = 64, stop: list[str] | None = None,
                 temperature: float = 0.0, seed: int | None = None, cancel: CancelToken | None = None) -> Generation:
        """Plain continuation of `prompt` (in which this engine's special-token strings count as special)."""
        tokens = self._vocab.bos_tokens() + self._vocab.tokenize_marked(prompt)
        tokens = tokens[-(self.n_ctx - max_tokens - 8) :]
        return self._generate(tokens, max_tokens=max_tokens, stop=stop, temperature=temperature, seed=seed,
                              cancel=cancel)

    def chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        seed: int | None = None,
        cancel: CancelToken | None = None,
    ) -> Generation:
        tokens, stop = self._chat.tokens(messages, self.n_ctx, max_tokens)
        return self._generate(tokens, max_tokens=max_tokens, stop=stop, temperature=temperature, seed=seed,
                              cancel=cancel, mode="prefix")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._llm.close()
        self._kv.cached = []


__all__ = ["LlamaEngine"]
