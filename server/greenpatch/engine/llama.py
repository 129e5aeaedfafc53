"""The in-process llama.cpp engine: the only module that imports llama_cpp.

The `Llama` object is used to load the model, tokenize and hold the context; decoding, KV-cache management,
sampling and stopping are done here through the low-level API, because the engine needs what `Llama.generate`
does not give: a cancel check after every token, per-token log-probabilities of the raw distribution, and
llama.cpp-style chunk reuse of the KV cache (see `kvplan`). Not thread-safe: `EngineWorker` owns it.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenpatch.engine.base import (
    CancelToken,
    ChatMessage,
    EngineBase,
    FimFormat,
    Generation,
    kept_tokens,
    line_end_to_stop_at,
)
from greenpatch.engine.drafts import DraftLength, DraftSource
from greenpatch.engine.healing import MAX_HEALED_TOKENS, PieceIndex, tokens_to_heal
from greenpatch.engine.kvplan import (
    DEFAULT_REUSE,
    MODES,
    PARK_MIN,
    ReusePlan,
    common_prefix,
    kv_operations,
    plan_reuse,
    worth_parking,
)
from greenpatch.engine.parking import DEFAULT_BUDGET, ParkedPrompts
from greenpatch.errors import EngineNotInstalled, ModelError

try:
    import llama_cpp
except ImportError as exc:  # pragma: no cover - exercised when the [llm] extra is missing
    raise EngineNotInstalled(
        f"llama-cpp-python is not installed ({exc})", "install it with `pip install 'greenpatch[llm]'`"
    ) from None

log = logging.getLogger(__name__)

DEFAULT_CTX = 4096
PARALLEL = 8  # sequences sampled side by side at most (see _generate_many); sequence 0 holds the prompt
# Prompt tokens decoded between two looks at the cancel token (see _prepare): ~1 s of the default model on 2 cores.
# Ad hoc, ~820-token prompts, the same ones alternating: 128 or 256 a step evaluate as fast as whole 512-token
# batches (7.0 s vs 7.1 s), 64 a step is 20 % slower (8.1 s vs 6.7 s).
PROMPT_STEP = 128
# The step of a prompt evaluated ahead (`prepare`): a request waits for the step in progress before it starts, so it is
# short (~0.25 s of the default model on 2 cores); the 20 % it costs in speed is idle time's.
PREPARE_STEP = 32


@dataclass
class _Stream:
    """One generation in progress: its sequence in the KV cache, what it has written, why it ended."""

    forced: bytes  # text it must start with (token healing), not part of its text
    stops: list[str]
    max_tokens: int
    cancel: CancelToken | None
    rng: np.random.Generator
    seq: int = 0
    start: int = 0  # the position of its first token (after the prompt)
    out: bytearray = field(default_factory=bytearray)  # `forced`, then the text generated
    text: str = ""
    emitted: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    token_ends: list[int] = field(default_factory=list)  # length of the text (characters) after each token
    cut: int | None = None  # where a stop string or the time budget cuts the text
    reason: str | None = None
    logits: np.ndarray | None = None  # of the last step, and their log-normalizer (the end check reads them)
    norm: float = 0.0

    @property
    def healing(self) -> bool:
        return len(self.out) < len(self.forced)


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
            with _patched_defaults(repack):
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
        self._ctx = self._llm.ctx
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._piece_buf = ctypes.create_string_buffer(64)
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self.n_ctx = self._llm.n_ctx()
        self.n_vocab = self._llm.n_vocab()
        self._n_batch = 512
        self._batch = self._llm._batch.batch  # allocated by Llama for n_batch tokens, one sequence
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(self._mem))
        self._cached: list[int] = []  # tokens whose KV entries sit at positions 0..len-1
        self._parked = ParkedPrompts(park_budget)
        self.resumed = 0  # prompts resumed from a parked one since load (the benchmark reports it)
        self.park = True  # keep prompts aside for a jump back (_park); the benchmark compares without
        self.fim = fim if fim is not None else self._fim_from_vocab()
        self._special = self._special_tokens()
        self._stop_ids = {t for t in self._special.values() if llama_cpp.llama_vocab_is_eog(self._vocab, t)}
        if self.fim:
            self._stop_ids |= {self._special[s] for s in (self.fim.prefix, self.fim.suffix, self.fim.middle)}
            self._stop_ids |= {self._special[s] for s in (self.fim.repo_name, self.fim.file_sep) if s in self._special}
        self._add_bos = bool(self._llm._model.add_bos_token())
        self._bos = self._llm.token_bos()
        self._chat_formatter: object | None = None
        self._empty_ids: np.ndarray | None = None
        self._pieces: list[bytes] | None = None
        self._piece_index: PieceIndex | None = None
        self.speculate = speculate
        self.heal = heal  # token healing of a partial word or the spaces before the cursor (healing.py)
        self._drafts = DraftSource()
        self.draft_counts = {"drafted": 0, "accepted": 0}  # since load (the benchmark reports them)

    # --- tokens ---------------------------------------------------------------------------------------------

    def _fim_from_vocab(self) -> FimFormat | None:
        ids = [llama_cpp.llama_vocab_fim_pre(self._vocab), llama_cpp.llama_vocab_fim_suf(self._vocab),
               llama_cpp.llama_vocab_fim_mid(self._vocab)]
        if any(i < 0 for i in ids):
            return None
        pre, suf, mid = (self._piece(i, special=True) for i in ids)
        rep, sep = llama_cpp.llama_vocab_fim_rep(self._vocab), llama_cpp.llama_vocab_fim_sep(self._vocab)
        return FimFormat(pre, suf, mid, self._piece(rep, special=True) if rep >= 0 else None,
                         self._piece(sep, special=True) if sep >= 0 else None)

    def _special_tokens(self) -> dict[str, int]:
        """Special token strings this engine places into prompts, each mapped to its single id."""
        names = ["<|endoftext|>", "<|im_end|>", "<|fim_pad|>"]
        if self.fim:
            names += [s for s in (self.fim.prefix, self.fim.suffix, self.fim.middle, self.fim.repo_name,
                                  self.fim.file_sep) if s]
        found: dict[str, int] = {}
        for text in names:
            ids = self._llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(ids) == 1 and self._piece(ids[0], special=False) == "":
                found[text] = ids[0]
        eos = self._llm.token_eos()
        if eos >= 0:
            found.setdefault(self._piece(eos, special=True), eos)
        if self.fim:
            missing = [s for s in (self.fim.prefix, self.fim.suffix, self.fim.middle) if s not in found]
            if missing:
                raise ModelError(f"model {self.name} lacks its FIM tokens {missing}", "check the manifest entry")
        return found

    def _piece_bytes(self, token: int, special: bool = False) -> bytes:
        size = len(self._piece_buf)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, size, 0, special)
        if n < 0:  # longer than the buffer: grow it once and retry
            self._piece_buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, -n, 0, special)
        return self._piece_buf.raw[: max(n, 0)]

    def _piece(self, token: int, special: bool = False) -> str:
        return self._piece_bytes(token, special).decode("utf-8", errors="replace")

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def _tokenize_marked(self, text: str) -> list[int]:
        """Tokenize text in which only this engine's own special-token strings count as special."""
        tokens: list[int] = []
        rest = text
        while rest:
            hits = [(rest.find(s), s) for s in self._special if s in rest]
            if not hits:
                tokens += self.tokenize(rest)
                break
            at, special = min(hits)
            tokens += self.tokenize(rest[:at])
            tokens.append(self._special[special])
            rest = rest[at + len(special) :]
        return tokens

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _bos_tokens(self) -> list[int]:
        return [self._bos] if self._add_bos and self._bos >= 0 else []

    # --- prompts --------------------------------------------------------------------------------------------

    def infill_tokens(self, prefix: str, suffix: str, context: str = "", max_tokens: int = 64) -> list[int]:
        budget = self.n_ctx - max_tokens - 8
        pre = self.tokenize(prefix)
        ctx = self._tokenize_marked(context)
        if self.fim is None:
            # No FIM tokens (the tiny test model): complete the prefix and ignore the suffix.
            if len(ctx) + len(pre) > budget:
                ctx = []
            pre = pre[-budget:]
            return self._bos_tokens() + ctx + pre
        # The start of the cursor's line goes after the middle token (as llama.vscode does): typing along a line
        # then only appends tokens, so the whole prompt before them stays cached.
        cut = prefix.rfind("\n") + 1
        head, tail = self.tokenize(prefix[:cut]), self.tokenize(prefix[cut:])
        pre = head
        suf = self.tokenize(suffix)
        s = self._special
        fixed = 3 + len(self._bos_tokens()) + len(tail)
        if fixed + len(ctx) + len(pre) + len(suf) > budget:
            ctx = []
        room = budget - fixed
        if len(pre) + len(suf) > room:
            suf = suf[: max(room // 4, room - len(pre))]
            pre = pre[-(room - len(suf)) :]
        return (self._bos_tokens() + ctx + [s[self.fim.prefix]] + pre + [s[self.fim.suffix]] + suf
                + [s[self.fim.middle]] + tail)

    def chat_tokens(self, messages: list[ChatMessage], max_tokens: int = 512) -> tuple[list[int], list[str]]:
        if self._chat_formatter is None:
            template = self._llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelError(f"model {self.name} has no chat template", "use a chat model for repair")
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos, bos = self._llm.token_eos(), self._llm.token_bos()
            self._chat_formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._piece(eos, special=True) if eos >= 0 else "",
                bos_token=self._piece(bos, special=True) if bos >= 0 else "",
                add_generation_prompt=True,
            )
        formatted = self._chat_formatter(messages=[{"role": m.role, "content": m.content} for m in messages])  # type: ignore[operator]
        tokens = self._llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True)
        if self._add_bos and self._bos >= 0 and (not tokens or tokens[0] != self._bos):
            tokens.insert(0, self._bos)
        stop = formatted.stop if isinstance(formatted.stop, list) else ([formatted.stop] if formatted.stop else [])
        budget = self.n_ctx - max_tokens - 8
        if len(tokens) > budget:
            tokens = tokens[:8] + tokens[-(budget - 8) :]
        return tokens, [s for s in stop if s]

    # --- decoding -------------------------------------------------------------------------------------------

    def _decode(self, tokens: Sequence[int], positions: Sequence[int], seq: int = 0, all_logits: bool = False,
                cancel: CancelToken | None = None, step: int = PROMPT_STEP) -> int:
        """Decode tokens at consecutive positions of sequence `seq`; logits are kept for the last one only, or for
        every one (`all_logits`: a speculative draft, at most one batch). With `cancel`, in steps of PROMPT_STEP
        tokens (or `step`), stopping before a step once it is set. How many tokens were decoded."""
        size = min(self._n_batch, step) if cancel is not None else self._n_batch
        for start in range(0, len(tokens), size):
            if cancel is not None and cancel.is_set():
                return start
            part = range(start, min(start + size, len(tokens)))
            rc = self._decode_batch([(tokens[i], positions[i], seq, all_logits or i == len(tokens) - 1) for i in part])
            if rc != 0:
                self._clear()
                raise ModelError(f"llama_decode failed ({rc})", "the prompt may not fit the context window")
        return len(tokens)

    def _decode_batch(self, items: Sequence[tuple[int, int, int, bool]]) -> int:
        """Decode one batch of (token, position, sequence, keep its logits); llama_decode's return code."""
        batch = self._batch
        batch.n_tokens = len(items)
        for j, (token, position, seq, logits) in enumerate(items):
            batch.token[j] = token
            batch.pos[j] = position
            batch.n_seq_id[j] = 1
            batch.seq_id[j][0] = seq
            batch.logits[j] = logits
        return int(llama_cpp.llama_decode(self._ctx, batch))

    def _clear(self) -> None:
        llama_cpp.llama_memory_clear(self._mem, True)
        self._cached = []
        self._parked.clear()

    def _park(self, prompt: list[int], mode: str) -> None:
        """Resume a parked prompt that `prompt` shares more with than the cache (a jump back), parking the cache in
        its place; or park the cache when `prompt` leaves most of it behind (a jump away). See parking.py."""
        if mode == "none" or not self.park:
            self._parked.clear()
            return
        cached = self._cached
        chosen = self._parked.take_best(cached, prompt)
        if chosen is not None:
            if len(cached) >= PARK_MIN:
                self._park_cache()
            llama_cpp.llama_memory_seq_rm(self._mem, 0, -1, -1)
            self._cached = []
            if llama_cpp.llama_state_seq_set_data(self._ctx, chosen.state, chosen.size, 0):
                self._cached = chosen.tokens
                self.resumed += 1
            else:  # nothing restored: the prompt is evaluated from scratch
                llama_cpp.llama_memory_seq_rm(self._mem, 0, -1, -1)
        elif worth_parking(cached, prompt):
            self._park_cache()

    def _park_cache(self) -> None:
        size = llama_cpp.llama_state_seq_get_size(self._ctx, 0)
        state = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(self._ctx, state, size, 0):
            self._parked.add(state, self._cached)

    @property
    def parked_bytes(self) -> int:
        """Memory the parked prompts hold (the benchmark reports it)."""
        return self._parked.size

    def _drop_from(self, position: int) -> None:
        """Forget the KV entries from `position` on (drafted tokens the model did not confirm)."""
        if not llama_cpp.llama_memory_seq_rm(self._mem, 0, position, -1):
            self._clear()  # the generation cannot go on without the prompt it was decoding after
            raise ModelError("cannot remove drafted tokens from the KV cache", "the cache was cleared; try again")

    def _vocab_pieces(self) -> list[bytes]:
        """Every token's text (special tokens: empty), read once."""
        if self._pieces is None:
            self._pieces = [self._piece_bytes(token) for token in range(self.n_vocab)]
        return self._pieces

    def _healing_index(self) -> PieceIndex:
        if self._piece_index is None:
            self._piece_index = PieceIndex(self._vocab_pieces())
        return self._piece_index

    def _empty_line_ids(self) -> np.ndarray:
        """Tokens that end the generation, only break the line, or start a comment: the ones a code-first step
        masks (a comment on a line where code belongs leaves the user to write the code anyway)."""
        if self._empty_ids is None:
            ids = set(self._stop_ids)
            for token, piece in enumerate(self._vocab_pieces()):
                if (llama_cpp.llama_vocab_is_eog(self._vocab, token) or (b"\n" in piece and not piece.strip())
                        or piece.lstrip().startswith(b"#")):
                    ids.add(token)
            self._empty_ids = np.array(sorted(ids), dtype=np.int64)
        return self._empty_ids

    def _logits(self, index: int = -1) -> np.ndarray:
        """Logits after the token at `index` of the last decoded batch (-1: its last token)."""
        ptr = llama_cpp.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float32, copy=True)

    def _prepare(self, prompt: list[int], mode: str, cancel: CancelToken | None = None,
                 step: int = PROMPT_STEP) -> ReusePlan | None:
        """Make the KV cache hold `prompt` (reusing what it can, see kvplan.py); None when `cancel` was set on the
        way: the cache then holds the prompt's start evaluated so far, which the next prompt reuses (a prompt of
        ~1,000 tokens takes ~9 s on 2 cores: a newer request should not wait for all of it)."""
        if mode == "chunk" and not self._can_shift:
            mode = "prefix"
        self._park(prompt, mode)
        plan = plan_reuse(self._cached, prompt, mode, self.min_chunk)
        if mode == "none" or plan.keep == 0 and not plan.chunks:
            llama_cpp.llama_memory_seq_rm(self._mem, 0, -1, -1)
            self._cached = []
            plan = ReusePlan(0, [], list(range(len(prompt))))
        else:
            for op, p0, p1, delta in kv_operations(plan, len(self._cached)):
                if op == "rm":
                    if not llama_cpp.llama_memory_seq_rm(self._mem, 0, p0, p1):
                        self._clear()
                        plan = ReusePlan(0, [], list(range(len(prompt))))
                        break
                else:
                    llama_cpp.llama_memory_seq_add(self._mem, 0, p0, p1, delta)
        try:
            for run in _runs(plan.evaluate):
                tokens = [prompt[i] for i in run]
                if run[-1] == len(prompt) - 1:
                    done = self._decode(tokens, run, cancel=cancel, step=step)
                else:
                    # llama.cpp only appends to a sequence (positions must continue its last one), but reused
                    # chunks already sit after this gap. Evaluate the gap in scratch sequence 1, which holds just
                    # the cells before it (so the new tokens attend to exactly what a fresh evaluation would),
                    # then give its cells to sequence 0 as well.
                    llama_cpp.llama_memory_seq_rm(self._mem, 1, -1, -1)
                    llama_cpp.llama_memory_seq_cp(self._mem, 0, 1, 0, run[0])
                    done = self._decode(tokens, run, seq=1, cancel=cancel, step=step)
                    llama_cpp.llama_memory_seq_cp(self._mem, 1, 0, run[0], run[0] + done)
                    llama_cpp.llama_memory_seq_rm(self._mem, 1, -1, -1)
                if done < len(tokens):  # cancelled: keep what is evaluated up to the first cell that is not
                    llama_cpp.llama_memory_seq_rm(self._mem, 0, run[0] + done, -1)
                    self._cached = list(prompt[: run[0] + done])
                    return None
        except BaseException:
            self._clear()
            raise
        self._cached = list(prompt)
        return plan

    def _choose(self, stream: _Stream, logits: np.ndarray, temperature: float, code_first: bool) -> tuple[int, float]:
        """The next token of `stream` and its log-probability; the step's logits and normalizer stay on the stream
        (the end check reads them)."""
        norm = _logsumexp(logits)
        if stream.healing:
            # Re-typing the healed text: only tokens that fit it; confidence among those alone.
            index, remaining = self._healing_index(), stream.forced[len(stream.out) :]
            fit = index.fitting(remaining)
            if not len(fit):  # no token spells the rest (not seen with byte-level vocabularies): suggest nothing
                return -1, 0.0
            norm = _logsumexp(logits[fit])
            if code_first:  # nor a token that goes on past it to end the line or start a comment
                past = fit[index.lengths[fit] > len(remaining)]
                fit = np.setdiff1d(fit, np.intersect1d(past, self._empty_line_ids()))
            masked = np.full_like(logits, -np.inf)
            masked[fit] = logits[fit]
            token = self._sample(masked, temperature, stream.rng)
        elif code_first and not stream.text.strip():
            # Nothing but whitespace so far: the end of text or a line break would leave the line empty.
            # The log-probability below still comes from the unmasked distribution, so the gate sees how
            # unsure the model was.
            masked = logits.copy()
            masked[self._empty_line_ids()] = -np.inf
            token = self._sample(masked, temperature, stream.rng)
        else:
            token = self._sample(logits, temperature, stream.rng)
        stream.logits, stream.norm = logits, norm
        return token, float(logits[token] - norm)

    def _take(self, stream: _Stream, token: int, logprob: float) -> bool:
        """Add `token` to `stream`; True when that ends it (`stream.reason` says why)."""
        stream.emitted.append(token)
        if token in self._stop_ids or llama_cpp.llama_vocab_is_eog(self._vocab, token):
            stream.reason = "eos"
            return True
        stream.out += self._piece_bytes(token)
        if len(stream.out) <= len(stream.forced):
            return False
        # the token writes past the healed text: it is part of the suggestion
        stream.text = stream.out[len(stream.forced) :].decode("utf-8", errors="ignore")
        stream.token_ends.append(len(stream.text))
        stream.logprobs.append(logprob)
        stream.cut = _find_stop(stream.text, stream.stops)
        if stream.cut is not None:
            stream.reason = "stop"
            return True
        stream.cut = line_end_to_stop_at(stream.text, stream.cancel)
        if stream.cut is not None:
            stream.reason = "time"
            return True
        if len(stream.logprobs) >= stream.max_tokens:
            stream.reason = "length"
            return True
        return False

    def _finish(self, stream: _Stream, end_check: bool, prompt_tokens: int, reused: int, started: float,
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
        stream = _Stream(forced, [s for s in (stop or []) if s], max_tokens, cancel, np.random.default_rng(seed),
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
            token, logprob = self._choose(stream, self._logits(pending.pop(0)), temperature, code_first)
            if token < 0 or self._take(stream, token, logprob):
                break
            if drafted:
                if drafted[0] == token:  # the draft was right: its token is decoded already
                    drafted.pop(0)
                    self._cached.append(token)
                    n_accepted += 1
                    if not drafted:
                        length.taken(last_draft, last_draft)
                    continue
                length.taken(last_draft, last_draft - len(drafted))
                self._drop_from(len(self._cached))
                drafted, pending = [], []
            room = max_tokens - len(stream.logprobs) - 1
            draft = (self._drafts.propose(stream.emitted, min(length.value, room))
                     if speculate and not stream.healing else [])
            self._decode([token, *draft], range(len(self._cached), len(self._cached) + 1 + len(draft)),
                         all_logits=bool(draft))
            self._cached.append(token)
            pending = list(range(1 + len(draft))) if draft else [-1]
            drafted, last_draft = list(draft), len(draft)
            n_drafted += len(draft)
        if drafted:  # drafted tokens past the end of the generation leave the cache
            self._drop_from(len(self._cached))
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
        """One sampled generation per seed, decoded side by side: each in its own sequence, which shares the
        prompt's cells with sequence 0, one token of each in every batch. The weights are read once per batch, so
        k samples cost less than k generations: with the default model on 2 cores, 3 side by side took 0.6x the
        time of 3 one after another, 8 side by side 1.14x (ad hoc, 12 HumanEval prompts).
        """
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            return [Generation("", [], "cancelled", len(prompt), 0, 0.0) for _ in seeds]
        plan = self._prepare(prompt, self.reuse, cancel)
        if plan is None:
            return [Generation("", [], "cancelled", len(prompt), 0, time.perf_counter() - started) for _ in seeds]
        first = self._logits()
        stops = [s for s in (stop or []) if s]
        streams = [_Stream(forced, stops, max_tokens, cancel, np.random.default_rng(seed), seq=1 + i,
                           start=len(prompt)) for i, seed in enumerate(seeds)]
        try:
            for stream in streams:
                llama_cpp.llama_memory_seq_rm(self._mem, stream.seq, -1, -1)
                llama_cpp.llama_memory_seq_cp(self._mem, 0, stream.seq, 0, len(prompt))
            logits = {stream.seq: first for stream in streams}
            active = list(streams)
            for _ in range(max_tokens + len(forced)):
                if cancel is not None and cancel.is_set():
                    for stream in active:
                        stream.reason = "cancelled"
                    break
                going = []
                for stream in active:
                    token, logprob = self._choose(stream, logits[stream.seq], temperature, code_first)
                    if token >= 0 and not self._take(stream, token, logprob):
                        going.append((stream, token))
                if not going:
                    break
                rc = self._decode_batch([(token, stream.start + len(stream.emitted) - 1, stream.seq, True)
                                         for stream, token in going])
                if rc != 0:
                    raise ModelError(f"llama_decode failed ({rc})", "the samples may not fit the context window")
                logits = {stream.seq: self._logits(j) for j, (stream, _) in enumerate(going)}
                active = [stream for stream, _ in going]
            return [self._finish(stream, end_check, len(prompt), plan.reused, started) for stream in streams]
        except BaseException:
            self._clear()
            raise
        finally:
            for stream in streams:
                llama_cpp.llama_memory_seq_rm(self._mem, stream.seq, -1, -1)

    def _end_logprob(self, stream: _Stream, stopped_by: int | None) -> float | None:
        """The log-probability that the fill ends where `stream` stopped: at the end of the text (the logits of
        the step that sampled the end), or after the token `stopped_by` carrying the line break. Text that token
        carries before its line break (`):\n` is one token) is decoded first, then dropped from the cache again."""
        assert stream.logits is not None
        stops = np.array(sorted(self._stop_ids), dtype=np.int64)
        if stopped_by is None:
            return _logsumexp(stream.logits[stops]) - stream.norm
        piece = self._piece_bytes(stopped_by)
        at = piece.find(b"\n")
        if at < 0:
            return None
        if at == 0:
            return _logsumexp(stream.logits[stops]) - stream.norm
        tokens = self._llm.tokenize(piece[:at], add_bos=False, special=False)
        position = stream.start + len(stream.emitted) - 1  # where the token carrying the break would have gone
        self._decode(tokens, range(position, position + len(tokens)), seq=stream.seq)
        after = self._logits()
        if not llama_cpp.llama_memory_seq_rm(self._mem, stream.seq, position, -1):
            self._clear()
            raise ModelError("cannot remove the end check's tokens from the KV cache", "the cache was cleared")
        return _logsumexp(after[stops]) - _logsumexp(after)

    @staticmethod
    def _sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
        if temperature <= 0:
            return int(logits.argmax())
        top_k = 40
        idx = np.argpartition(logits, -top_k)[-top_k:]
        scaled = logits[idx] / temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        order = np.argsort(-probs)
        keep = order[: int(np.searchsorted(np.cumsum(probs[order]), 0.95)) + 1]
        p = probs[keep] / probs[keep].sum()
        return int(idx[keep][rng.choice(len(keep), p=p)])

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
            return common_prefix(self._cached, prompt)
        self._prepare(prompt, self.reuse, cancel, step=PREPARE_STEP)
        return common_prefix(self._cached, prompt)

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
        prompt = self.infill_tokens(prefix, suffix, context, max_tokens)
        forced = b""
        if self.heal:
            # The prompt ends with the cursor's line (after the middle token with FIM, see infill_tokens): heal
            # the word at its end.
            tail = prompt[-MAX_HEALED_TOKENS:]
            if self.fim is not None:
                middle = self._special[self.fim.middle]
                tail = tail[len(tail) - tail[::-1].index(middle) :] if middle in tail else tail
            pieces = [self._piece_bytes(t) for t in tail]
            k = tokens_to_heal(prefix, pieces)
            if k:
                forced = b"".join(pieces[-k:])
                prompt = prompt[:-k]
        return prompt, forced

    def score(self, prefix: str, suffix: str, middle: str, *, context: str = "",
              cancel: CancelToken | None = None) -> list[float]:
        """Log-probabilities of `middle` filling the gap between prefix and suffix, one per token, then one for
        ending the fill there (teacher forcing; how natural the model finds a given fill)."""
        if self.fim is None:
            return []
        tokens = self.tokenize(middle) if middle else []
        prompt = self.infill_tokens(prefix, suffix, context, max_tokens=len(tokens) + 8)
        if self._prepare(prompt, "prefix", cancel) is None:
            return []
        stops = np.array(sorted(self._stop_ids), dtype=np.int64)
        out: list[float] = []
        for token in [*tokens, -1]:
            if cancel is not None and cancel.is_set():
                return []
            logits = self._logits()
            norm = _logsumexp(logits)
            if token < 0:  # the end of the fill: any token that ends it
                out.append(_logsumexp(logits[stops]) - norm)
                break
            out.append(float(logits[token]) - norm)
            self._decode([token], [len(self._cached)])
            self._cached.append(token)
        return out

    def complete(self, prompt: str, *, max_tokens: int = 64, stop: list[str] | None = None,
                 temperature: float = 0.0, seed: int | None = None, cancel: CancelToken | None = None) -> Generation:
        """Plain continuation of `prompt` (in which this engine's special-token strings count as special)."""
        tokens = self._bos_tokens() + self._tokenize_marked(prompt)
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
        tokens, stop = self.chat_tokens(messages, max_tokens)
        return self._generate(tokens, max_tokens=max_tokens, stop=stop, temperature=temperature, seed=seed,
                              cancel=cancel, mode="prefix")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._llm.close()
        self._cached = []


def amx_build() -> bool:
    info = llama_cpp.llama_print_system_info()
    return b"AMX_INT8 = 1" in (info if isinstance(info, bytes) else str(info).encode())


def extra_bufts() -> bool:
    """Whether weights go to llama.cpp's extra buffer types (repacked for faster matmuls); see _patched_defaults."""
    return os.environ.get("GREENPATCH_EXTRA_BUFTS") == "1" or not amx_build()


@contextlib.contextmanager
def _patched_defaults(repack: bool) -> Iterator[None]:
    """Context with several sequences; and weights without llama.cpp's "extra buffer types" when the build uses AMX.

    A llama.cpp built with GGML_NATIVE on an AMX CPU routes matmuls through AMX tiles, which segfault in VMs
    that do not grant tile state (seen on this project's CI machines). Plain buffers avoid the AMX path (and the
    weight repacking). GREENPATCH_EXTRA_BUFTS=1 keeps them.
    """
    import llama_cpp.llama as llama_module

    low: Any = llama_module.llama_cpp  # type: ignore[attr-defined]  # llama.py's own import, not re-exported
    model_defaults, context_defaults = low.llama_model_default_params, low.llama_context_default_params
    no_extra = not repack

    def model_params() -> object:
        p = model_defaults()
        if no_extra:
            p.use_extra_bufts = False
        return p

    def context_params() -> object:
        # A second sequence is the scratch space for evaluating new tokens *before* reused chunks (see _prepare),
        # and samples decode side by side in sequences of their own (_generate_many); a unified cache lets the
        # sequences share the prompt's cells.
        p = context_defaults()
        p.n_seq_max = 1 + PARALLEL
        p.kv_unified = True
        return p

    low.llama_model_default_params, low.llama_context_default_params = model_params, context_params
    try:
        yield
    finally:
        low.llama_model_default_params, low.llama_context_default_params = model_defaults, context_defaults


def _logsumexp(values: np.ndarray) -> float:
    """log(sum(exp(values))) without overflow: the normalizer that turns logits into log-probabilities."""
    top = float(values.max())
    return top + float(np.log(np.exp(values - top).sum()))


def _runs(positions: list[int]) -> list[list[int]]:
    """Split ascending positions into runs of consecutive ones."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def _find_stop(text: str, stops: list[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


__all__ = ["LlamaEngine"]
