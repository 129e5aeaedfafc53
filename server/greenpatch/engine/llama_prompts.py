"""Prompts of the in-process engine as tokens: infill prompts cut to the context window (the cursor's line after
the middle token), token healing's take-back of the word before the cursor, chat prompts from the model's template.
"""

from __future__ import annotations

import llama_cpp

from greenpatch.engine.base import ChatMessage
from greenpatch.engine.healing import MAX_HEALED_TOKENS, tokens_to_heal
from greenpatch.engine.llama_vocab import Vocabulary
from greenpatch.errors import ModelError


def infill_tokens(vocab: Vocabulary, n_ctx: int, prefix: str, suffix: str, context: str = "",
                  max_tokens: int = 64) -> list[int]:
    """The infill prompt for the cursor between `prefix` and `suffix`, with `context` before it, cut to leave
    `max_tokens` of the context window for the fill."""
    fim = vocab.fim
    budget = n_ctx - max_tokens - 8
    pre = vocab.tokenize(prefix)
    ctx = vocab.tokenize_marked(context)
    if fim is None:
        # No FIM tokens (the tiny test model): complete the prefix and ignore the suffix.
        if len(ctx) + len(pre) > budget:
            ctx = []
        pre = pre[-budget:]
        return vocab.bos_tokens() + ctx + pre
    # The start of the cursor's line goes after the middle token (as llama.vscode does): typing along a line
    # then only appends tokens, so the whole prompt before them stays cached.
    cut = prefix.rfind("\n") + 1
    head, tail = vocab.tokenize(prefix[:cut]), vocab.tokenize(prefix[cut:])
    pre = head
    suf = vocab.tokenize(suffix)
    s = vocab.special
    fixed = 3 + len(vocab.bos_tokens()) + len(tail)
    if fixed + len(ctx) + len(pre) + len(suf) > budget:
        ctx = []
    room = budget - fixed
    if len(pre) + len(suf) > room:
        suf = suf[: max(room // 4, room - len(pre))]
        pre = pre[-(room - len(suf)) :]
    return vocab.bos_tokens() + ctx + [s[fim.prefix]] + pre + [s[fim.suffix]] + suf + [s[fim.middle]] + tail


def healed(vocab: Vocabulary, prompt: list[int], prefix: str) -> tuple[list[int], bytes]:
    """`prompt` less the tokens token healing takes back (healing.py), and the text they spelled."""
    forced = b""
    # The prompt ends with the cursor's line (after the middle token with FIM, see infill_tokens): heal
    # the word at its end.
    tail = prompt[-MAX_HEALED_TOKENS:]
    if vocab.fim is not None:
        middle = vocab.special[vocab.fim.middle]
        tail = tail[len(tail) - tail[::-1].index(middle) :] if middle in tail else tail
    pieces = [vocab.piece_bytes(t) for t in tail]
    k = tokens_to_heal(prefix, pieces)
    if k:
        forced = b"".join(pieces[-k:])
        prompt = prompt[:-k]
    return prompt, forced


class ChatTemplate:
    """Chat prompts from the model's own template (its GGUF metadata), read on first use."""

    def __init__(self, llm: llama_cpp.Llama, vocab: Vocabulary, name: str) -> None:
        self._llm, self._vocab, self._name = llm, vocab, name
        self._formatter: object | None = None

    def tokens(self, messages: list[ChatMessage], n_ctx: int, max_tokens: int = 512) -> tuple[list[int], list[str]]:
        """The prompt for `messages`, cut to leave `max_tokens` of the context window, and its stop strings."""
        if self._formatter is None:
            template = self._llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelError(f"model {self._name} has no chat template", "use a chat model for repair")
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos, bos = self._llm.token_eos(), self._llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._vocab.piece(eos, special=True) if eos >= 0 else "",
                bos_token=self._vocab.piece(bos, special=True) if bos >= 0 else "",
                add_generation_prompt=True,
            )
        formatted = self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])  # type: ignore[operator]
        tokens = self._llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True)
        if self._vocab.add_bos and self._vocab.bos >= 0 and (not tokens or tokens[0] != self._vocab.bos):
            tokens.insert(0, self._vocab.bos)
        stop = formatted.stop if isinstance(formatted.stop, list) else ([formatted.stop] if formatted.stop else [])
        budget = n_ctx - max_tokens - 8
        if len(tokens) > budget:
            tokens = tokens[:8] + tokens[-(budget - 8) :]
        return tokens, [s for s in stop if s]
