"""The in-process engine's KV cache: which tokens it holds, decoding into it, and making it hold a new prompt.

A new prompt reuses what the cache holds (its common prefix, and with "chunk" reuse the chunks after it shifted
into place, see kvplan.py); prompts left behind are parked for a jump back (parking.py). Sequence 0 holds the
prompt; sequence 1 is scratch space for evaluating tokens before reused chunks; samples decoded side by side use
sequences of their own (llama_batch.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import llama_cpp
import numpy as np

from greenpatch.engine.base import CancelToken
from greenpatch.engine.kvplan import ReusePlan, common_prefix, kv_operations, plan_reuse, worth_parking
from greenpatch.engine.parking import ParkedPrompts
from greenpatch.errors import ModelError

# Prompt tokens decoded between two looks at the cancel token (see prepare): ~1 s of the default model on 2 cores.
# Ad hoc, ~820-token prompts, the same ones alternating: 128 or 256 a step evaluate as fast as whole 512-token
# batches (7.0 s vs 7.1 s), 64 a step is 20 % slower (8.1 s vs 6.7 s).
PROMPT_STEP = 128


class KvCache:
    """The context's KV cache and the batch decoded into it. Not thread-safe: the engine's worker owns it."""

    def __init__(self, llm: llama_cpp.Llama, park_budget: int) -> None:
        self.ctx = llm.ctx
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.n_vocab = llm.n_vocab()
        self._n_batch = 512
        self._batch = llm._batch.batch  # allocated by Llama for n_batch tokens, one sequence
        self.can_shift = bool(llama_cpp.llama_memory_can_shift(self.mem))
        self.cached: list[int] = []  # tokens whose KV entries sit at positions 0..len-1
        self.parked = ParkedPrompts(park_budget)
        self.resumed = 0  # prompts resumed from a parked one since load (the benchmark reports it)

    def decode(self, tokens: Sequence[int], positions: Sequence[int], seq: int = 0, all_logits: bool = False,
               cancel: CancelToken | None = None, step: int = PROMPT_STEP) -> int:
        """Decode tokens at consecutive positions of sequence `seq`; logits are kept for the last one only, or for
        every one (`all_logits`: a speculative draft, at most one batch). With `cancel`, in steps of PROMPT_STEP
        tokens (or `step`), stopping before a step once it is set. How many tokens were decoded."""
        size = min(self._n_batch, step) if cancel is not None else self._n_batch
        for start in range(0, len(tokens), size):
            if cancel is not None and cancel.is_set():
                return start
            part = range(start, min(start + size, len(tokens)))
            rc = self.decode_batch([(tokens[i], positions[i], seq, all_logits or i == len(tokens) - 1) for i in part])
            if rc != 0:
                self.clear()
                raise ModelError(f"llama_decode failed ({rc})", "the prompt may not fit the context window")
        return len(tokens)

    def decode_batch(self, items: Sequence[tuple[int, int, int, bool]]) -> int:
        """Decode one batch of (token, position, sequence, keep its logits); llama_decode's return code."""
        batch = self._batch
        batch.n_tokens = len(items)
        for j, (token, position, seq, logits) in enumerate(items):
            batch.token[j] = token
            batch.pos[j] = position
            batch.n_seq_id[j] = 1
            batch.seq_id[j][0] = seq
            batch.logits[j] = logits
        return int(llama_cpp.llama_decode(self.ctx, batch))

    def logits(self, index: int = -1) -> np.ndarray:
        """Logits after the token at `index` of the last decoded batch (-1: its last token)."""
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float32, copy=True)

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self.mem, True)
        self.cached = []
        self.parked.clear()

    def drop_from(self, position: int) -> None:
        """Forget the KV entries from `position` on (drafted tokens the model did not confirm)."""
        if not llama_cpp.llama_memory_seq_rm(self.mem, 0, position, -1):
            self.clear()  # the generation cannot go on without the prompt it was decoding after
            raise ModelError("cannot remove drafted tokens from the KV cache", "the cache was cleared; try again")

    def held(self, prompt: Sequence[int]) -> int:
        """How many of `prompt`'s first tokens are evaluated already, in the cache or in a parked prompt."""
        return max([common_prefix(self.cached, prompt), *(common_prefix(t, prompt) for t in self.parked.tokens())])

    def _park(self, prompt: list[int], mode: str, park: bool) -> None:
        """Resume a parked prompt that `prompt` shares more with than the cache (a jump back), parking the cache in
        its place; or park the cache when `prompt` leaves most of it behind (a jump away). See parking.py."""
        if mode == "none" or not park:
            self.parked.clear()
            return
        cached = self.cached
        chosen = self.parked.take_best(cached, prompt)
        if chosen is not None:
            if worth_parking(cached, ()):
                self._park_cache()
            llama_cpp.llama_memory_seq_rm(self.mem, 0, -1, -1)
            self.cached = []
            if llama_cpp.llama_state_seq_set_data(self.ctx, chosen.state, chosen.size, 0):
                self.cached = chosen.tokens
                self.resumed += 1
            else:  # nothing restored: the prompt is evaluated from scratch
                llama_cpp.llama_memory_seq_rm(self.mem, 0, -1, -1)
        elif worth_parking(cached, prompt):
            self._park_cache()

    def _park_cache(self) -> None:
        size = llama_cpp.llama_state_seq_get_size(self.ctx, 0)
        state = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(self.ctx, state, size, 0):
            self.parked.add(state, self.cached)

    def prepare(self, prompt: list[int], mode: str, min_chunk: int, park: bool, cancel: CancelToken | None = None,
                step: int = PROMPT_STEP) -> ReusePlan | None:
        """Make the cache hold `prompt` (reusing what it can, see kvplan.py; `park`: keep prompts aside for a jump
        back); None when `cancel` was set on the way: the cache then holds the prompt's start evaluated so far,
        which the next prompt reuses (a prompt of ~1,000 tokens takes ~9 s on 2 cores: a newer request should not
        wait for all of it)."""
        if mode == "chunk" and not self.can_shift:
            mode = "prefix"
        self._park(prompt, mode, park)
        plan = plan_reuse(self.cached, prompt, mode, min_chunk)
        if mode == "none" or plan.keep == 0 and not plan.chunks:
            llama_cpp.llama_memory_seq_rm(self.mem, 0, -1, -1)
            self.cached = []
            plan = ReusePlan(0, [], list(range(len(prompt))))
        else:
            for op, p0, p1, delta in kv_operations(plan, len(self.cached)):
                if op == "rm":
                    if not llama_cpp.llama_memory_seq_rm(self.mem, 0, p0, p1):
                        self.clear()
                        plan = ReusePlan(0, [], list(range(len(prompt))))
                        break
                else:
                    llama_cpp.llama_memory_seq_add(self.mem, 0, p0, p1, delta)
        try:
            for run in _runs(plan.evaluate):
                tokens = [prompt[i] for i in run]
                if run[-1] == len(prompt) - 1:
                    done = self.decode(tokens, run, cancel=cancel, step=step)
                else:
                    # llama.cpp only appends to a sequence (positions must continue its last one), but reused
                    # chunks already sit after this gap. Evaluate the gap in scratch sequence 1, which holds just
                    # the cells before it (so the new tokens attend to exactly what a fresh evaluation would),
                    # then give its cells to sequence 0 as well.
                    llama_cpp.llama_memory_seq_rm(self.mem, 1, -1, -1)
                    llama_cpp.llama_memory_seq_cp(self.mem, 0, 1, 0, run[0])
                    done = self.decode(tokens, run, seq=1, cancel=cancel, step=step)
                    llama_cpp.llama_memory_seq_cp(self.mem, 1, 0, run[0], run[0] + done)
                    llama_cpp.llama_memory_seq_rm(self.mem, 1, -1, -1)
                if done < len(tokens):  # cancelled: keep what is evaluated up to the first cell that is not
                    llama_cpp.llama_memory_seq_rm(self.mem, 0, run[0] + done, -1)
                    self.cached = list(prompt[: run[0] + done])
                    return None
        except BaseException:
            self.clear()
            raise
        self.cached = list(prompt)
        return plan


def _runs(positions: list[int]) -> list[list[int]]:
    """Split ascending positions into runs of consecutive ones."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs
