"""Token healing: completing a word the user is half-way through typing, or a line after its indentation.

A prompt that ends in a partial word ("retu", "def upda") ends in tokens the model rarely saw there: in training
"return" is one token, so after "retu" it writes what follows a *finished* word (`retu = ...`). The same holds for
whitespace: the editor indents a new line with 8 spaces, one token, while code tokenizes as 7 spaces and
" return", so after the 8 the model writes " return" and the line gets 9. Healing backs the prompt up over the
tokens that hold the partial word or the spaces and makes the generation start with their text again, so the
model picks the token it prefers there ("return", "update_settings", "       " + " return"); the text handed back
starts after the cursor.

Pure parts here (which tokens to back up over, which tokens fit the text still to re-type); the engine owns the
decoding loop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

MAX_HEALED_TOKENS = 4
_HEALED_END = re.compile(r"(?:\w+|[ \t]+)\Z")


def tokens_to_heal(prefix: str, tail_pieces: Sequence[bytes]) -> int:
    """How many of the prompt's last tokens (`tail_pieces`, their bytes) to back up over: those that hold the
    partial word or the spaces at the end of `prefix`. 0 when the prefix ends otherwise (a symbol, a line break) or
    the word is too long to heal."""
    word = _HEALED_END.search(prefix)
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
        self.lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        self._by_first = {b: np.array(ids, dtype=np.int64) for b, ids in by_first.items()}
        self._seen: dict[bytes, np.ndarray] = {}  # indentation repeats: remember the answers

    def fitting(self, remaining: bytes) -> np.ndarray:
        """Tokens whose text is a start of `remaining` or starts with all of it (never empty for text the
        tokenizer produced: its own tokens fit)."""
        found = self._seen.get(remaining)
        if found is None:
            ids = self._by_first.get(remaining[0], np.zeros(0, np.int64)) if remaining else np.zeros(0, np.int64)
            pieces = self._pieces
            found = np.array([t for t in ids.tolist() if remaining.startswith(pieces[t]) or pieces[t].startswith(remaining)],
                             dtype=np.int64)
            if len(self._seen) >= 512:
                self._seen.clear()
            self._seen[remaining] = found
        return found
