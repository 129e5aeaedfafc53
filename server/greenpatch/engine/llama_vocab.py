"""The model's vocabulary as the in-process engine uses it: token texts, special tokens, tokenizing prompts.

Read from llama.cpp once per model: the FIM tokens (when the manifest names none), the special tokens the engine
places into prompts, the tokens that end a generation, every token's text (for token healing and the code-first
mask, read on first use).
"""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np

from greenpatch.engine.base import FimFormat
from greenpatch.engine.healing import PieceIndex
from greenpatch.errors import ModelError


class Vocabulary:
    def __init__(self, llm: llama_cpp.Llama, name: str, fim: FimFormat | None) -> None:
        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._piece_buf = ctypes.create_string_buffer(64)
        self.name = name
        self.n_vocab = llm.n_vocab()
        self.fim = fim if fim is not None else self._fim_from_vocab()
        self.special = self._special_tokens()
        self.stop_ids = {t for t in self.special.values() if self.is_eog(t)}
        if self.fim:
            self.stop_ids |= {self.special[s] for s in (self.fim.prefix, self.fim.suffix, self.fim.middle)}
            self.stop_ids |= {self.special[s] for s in (self.fim.repo_name, self.fim.file_sep) if s in self.special}
        self.add_bos = bool(llm._model.add_bos_token())
        self.bos = llm.token_bos()
        self._empty_ids: np.ndarray | None = None
        self._pieces: list[bytes] | None = None
        self._piece_index: PieceIndex | None = None

    def _fim_from_vocab(self) -> FimFormat | None:
        ids = [llama_cpp.llama_vocab_fim_pre(self._vocab), llama_cpp.llama_vocab_fim_suf(self._vocab),
               llama_cpp.llama_vocab_fim_mid(self._vocab)]
        if any(i < 0 for i in ids):
            return None
        pre, suf, mid = (self.piece(i, special=True) for i in ids)
        rep, sep = llama_cpp.llama_vocab_fim_rep(self._vocab), llama_cpp.llama_vocab_fim_sep(self._vocab)
        return FimFormat(pre, suf, mid, self.piece(rep, special=True) if rep >= 0 else None,
                         self.piece(sep, special=True) if sep >= 0 else None)

    def _special_tokens(self) -> dict[str, int]:
        """Special token strings this engine places into prompts, each mapped to its single id."""
        names = ["<|endoftext|>", "<|im_end|>", "<|fim_pad|>"]
        if self.fim:
            names += [s for s in (self.fim.prefix, self.fim.suffix, self.fim.middle, self.fim.repo_name,
                                  self.fim.file_sep) if s]
        found: dict[str, int] = {}
        for text in names:
            ids = self._llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(ids) == 1 and self.piece(ids[0], special=False) == "":
                found[text] = ids[0]
        eos = self._llm.token_eos()
        if eos >= 0:
            found.setdefault(self.piece(eos, special=True), eos)
        if self.fim:
            missing = [s for s in (self.fim.prefix, self.fim.suffix, self.fim.middle) if s not in found]
            if missing:
                raise ModelError(f"model {self.name} lacks its FIM tokens {missing}", "check the manifest entry")
        return found

    def is_eog(self, token: int) -> bool:
        """Whether `token` ends a generation by llama.cpp's own account (end of text, end of turn)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def piece_bytes(self, token: int, special: bool = False) -> bytes:
        size = len(self._piece_buf)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, size, 0, special)
        if n < 0:  # longer than the buffer: grow it once and retry
            self._piece_buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, -n, 0, special)
        return self._piece_buf.raw[: max(n, 0)]

    def piece(self, token: int, special: bool = False) -> str:
        return self.piece_bytes(token, special).decode("utf-8", errors="replace")

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def tokenize_marked(self, text: str) -> list[int]:
        """Tokenize text in which only this engine's own special-token strings count as special."""
        tokens: list[int] = []
        rest = text
        while rest:
            hits = [(rest.find(s), s) for s in self.special if s in rest]
            if not hits:
                tokens += self.tokenize(rest)
                break
            at, special = min(hits)
            tokens += self.tokenize(rest[:at])
            tokens.append(self.special[special])
            rest = rest[at + len(special) :]
        return tokens

    def bos_tokens(self) -> list[int]:
        return [self.bos] if self.add_bos and self.bos >= 0 else []

    def pieces(self) -> list[bytes]:
        """Every token's text (special tokens: empty), read once."""
        if self._pieces is None:
            self._pieces = [self.piece_bytes(token) for token in range(self.n_vocab)]
        return self._pieces

    def healing_index(self) -> PieceIndex:
        if self._piece_index is None:
            self._piece_index = PieceIndex(self.pieces())
        return self._piece_index

    def empty_line_ids(self) -> np.ndarray:
        """Tokens that end the generation, only break the line, or start a comment: the ones a code-first step
        masks (a comment on a line where code belongs leaves the user to write the code anyway)."""
        if self._empty_ids is None:
            ids = set(self.stop_ids)
            for token, piece in enumerate(self.pieces()):
                if self.is_eog(token) or (b"\n" in piece and not piece.strip()) or piece.lstrip().startswith(b"#"):
                    ids.add(token)
            self._empty_ids = np.array(sorted(ids), dtype=np.int64)
        return self._empty_ids
