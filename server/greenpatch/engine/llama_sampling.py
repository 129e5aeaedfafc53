"""Choosing tokens for a generation in progress: the stream's state, sampling, token healing's constraint, the
code-first mask, and when a stream ends (end of text, a stop string, the time budget, the token limit).

Pure numpy on the logits the engine hands in; nothing here decodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from greenpatch.engine.base import CancelToken, line_end_to_stop_at
from greenpatch.engine.llama_vocab import Vocabulary


@dataclass
class Stream:
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


def choose(stream: Stream, logits: np.ndarray, temperature: float, code_first: bool,
           vocab: Vocabulary) -> tuple[int, float]:
    """The next token of `stream` and its log-probability; the step's logits and normalizer stay on the stream
    (the end check reads them)."""
    norm = logsumexp(logits)
    if stream.healing:
        # Re-typing the healed text: only tokens that fit it; confidence among those alone.
        index, remaining = vocab.healing_index(), stream.forced[len(stream.out) :]
        fit = index.fitting(remaining)
        if not len(fit):  # no token spells the rest (not seen with byte-level vocabularies): suggest nothing
            return -1, 0.0
        norm = logsumexp(logits[fit])
        if code_first:  # nor a token that goes on past it to end the line or start a comment
            past = fit[index.lengths[fit] > len(remaining)]
            fit = np.setdiff1d(fit, np.intersect1d(past, vocab.empty_line_ids()))
        masked = np.full_like(logits, -np.inf)
        masked[fit] = logits[fit]
        token = sample(masked, temperature, stream.rng)
    elif code_first and not stream.text.strip():
        # Nothing but whitespace so far: the end of text or a line break would leave the line empty.
        # The log-probability below still comes from the unmasked distribution, so the gate sees how
        # unsure the model was.
        masked = logits.copy()
        masked[vocab.empty_line_ids()] = -np.inf
        token = sample(masked, temperature, stream.rng)
    else:
        token = sample(logits, temperature, stream.rng)
    stream.logits, stream.norm = logits, norm
    return token, float(logits[token] - norm)


def take(stream: Stream, token: int, logprob: float, vocab: Vocabulary) -> bool:
    """Add `token` to `stream`; True when that ends it (`stream.reason` says why)."""
    stream.emitted.append(token)
    if token in vocab.stop_ids or vocab.is_eog(token):
        stream.reason = "eos"
        return True
    stream.out += vocab.piece_bytes(token)
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


def sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
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


def logsumexp(values: np.ndarray) -> float:
    """log(sum(exp(values))) without overflow: the normalizer that turns logits into log-probabilities."""
    top = float(values.max())
    return top + float(np.log(np.exp(values - top).sum()))


def _find_stop(text: str, stops: list[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None
