"""Evaluated prompts kept aside for a jump back, within a memory budget (the local engine's prompt-state parking).

A parked prompt is a copy of sequence 0's KV state in memory, with the tokens it holds, not cells left in the
cache: every decode attends over all the cells in use, so parked cells would slow everything else down (measured:
a new place 11.2 s instead of 8.7 s). A copy costs the model's KV bytes per token (~29 KB with the default model:
a 1,000-token prompt ~29 MB), so the budget is in bytes: the default 200 MB keeps ~7 prompts of the default model's
full window (2 were kept before; `bench complete` measured RSS +0.27 GB over the model file with them, and the
target is +0.5 GB). Which prompt to resume is decided in kvplan.py (pure); this module holds the states.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass

from greenpatch.engine.kvplan import choose_parked

DEFAULT_BUDGET = 200 * 1000 * 1000  # bytes of parked KV state at most


@dataclass
class ParkedPrompt:
    state: ctypes.Array[ctypes.c_uint8]  # llama_state_seq_get_data of sequence 0
    tokens: list[int]  # what that state holds, positions 0..len-1

    @property
    def size(self) -> int:
        return len(self.state)


class ParkedPrompts:
    """Parked prompts, latest first, at most `budget` bytes of state together (the oldest leave first)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._items: list[ParkedPrompt] = []

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def size(self) -> int:
        """Bytes held."""
        return sum(item.size for item in self._items)

    def tokens(self) -> list[list[int]]:
        return [item.tokens for item in self._items]

    def add(self, state: ctypes.Array[ctypes.c_uint8], tokens: Sequence[int]) -> None:
        if len(state) > self.budget:
            return
        # a prompt parked again replaces its older copy (a prepared place the user then typed at, or left twice)
        self._items = [item for item in self._items if item.tokens != list(tokens)]
        self._items.insert(0, ParkedPrompt(state, list(tokens)))
        while self.size > self.budget:
            self._items.pop()

    def take_best(self, cached: Sequence[int], prompt: Sequence[int]) -> ParkedPrompt | None:
        """Remove and return the parked prompt to resume for `prompt` (see kvplan.choose_parked), if any."""
        chosen = choose_parked(cached, prompt, self.tokens())
        return self._items.pop(chosen) if chosen is not None else None

    def clear(self) -> None:
        self._items = []
