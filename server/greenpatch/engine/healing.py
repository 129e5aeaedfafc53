"""Token healing: completing a word the user is half-way through typing.

A prompt that ends in a partial word ("retu", "def upda") ends in tokens the model rarely saw there: in training
"return" is one token, so after "retu" it writes what follows a *finished* word (`retu = ...`). Healing backs the
prompt up over the tokens that hold the partial word and makes the generation start with their text again, so the
model picks the token it prefers there ("return", "update_settings"); the text handed back starts after the cursor.

Pure parts here (which tokens to back up over, which tokens fit the text still to re-type); the engine owns the
decoding loop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

MAX_HEALED_TOKENS = 4
_WORD_END = re.compile(r"\w+$")


def tokens_to_heal(prefix: str, tail_pieces: Sequence[bytes]) -> int:
    """How many of the prompt's last tokens (`tail_pieces`, their bytes) to back up over: those that hold the
    partial word at the end of `prefix`. 0 when the prefix does not end in a word or the word is too long to heal."""
    word = _WORD_END.search(prefix)
    if word is None:
        return 0
    need = len(word.group().encode("utf-8"))
    covered = 0
    for k in range(1, min(MAX_HEALED_TOKENS, len(tail_pieces)) + 1):
        covered += len(tail_pieces[-k])
        if covered >= need:
            return k
    return 0


class PieceIndex:
    """The vocabulary's token texts, by first byte, to find the tokens that fit text still to be re-typed."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        by_first: dict[int, list[int]] = {}
        for token, piece in enumerate(pieces):
            if piece:
                by_first.setdefault(piece[0], []).append(token)
        self._pieces = list(pieces)
        self._by_first = {b: np.array(ids, dtype=np.int64) for b, ids in by_first.items()}

    def fitting(self, remaining: bytes) -> np.ndarray:
        """Tokens whose text is a start of `remaining` or starts with all of it (never empty for text the
        tokenizer produced: its own tokens fit)."""
        ids = self._by_first.get(remaining[0], np.zeros(0, dtype=np.int64)) if remaining else np.zeros(0, np.int64)
        keep = [t for t in ids.tolist() if remaining.startswith(self._pieces[t]) or self._pieces[t].startswith(remaining)]
        return np.array(keep, dtype=np.int64)
