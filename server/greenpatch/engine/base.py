"""The interface every engine implements (local llama.cpp, remote server, fake).

Engines are synchronous and single-threaded; `engine.worker.EngineWorker` owns one and serialises requests on
its own thread so nothing slow runs on the LSP event loop. Cancellation is cooperative: engines check
`cancel.is_set()` after every generated token and return `Generation(stop_reason="cancelled")`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from greenpatch.cancel import CancelToken

__all__ = ["CHARS_PER_TOKEN", "CancelToken", "ChatMessage", "Engine", "EngineBase", "FimFormat", "Generation"]

# Characters per token of code, to turn a token budget into characters and back without a tokenizer call
# (prompt budgets in context/builder.py, the remote engine's count_tokens). Erring low is the safe side for
# both: a prompt comes out shorter than its budget, a text is counted longer than it is. 3.5 sits under what
# the default model's tokenizer gives on Python (about 4 on average; 3.5 is below 19 in 20 prompt-sized
# windows of greenpatch's own code), so budgets hold without giving up much context.
CHARS_PER_TOKEN = 3.5


@dataclass
class Generation:
    text: str
    # One log-probability per generated token (natural log); empty when the engine cannot report them.
    logprobs: list[float] = field(default_factory=list)
    stop_reason: str = "stop"  # "stop" | "length" | "cancelled" | "eos" | "time" (see line_end_to_stop_at)
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV state was reused instead of evaluated
    seconds: float = 0.0
    prompt_seconds: float = 0.0  # of `seconds`, evaluating the prompt (0.0 when the engine cannot tell)
    drafted_tokens: int = 0  # speculative decoding: tokens proposed from earlier outputs, and those the model kept
    accepted_tokens: int = 0
    # Where each token of `logprobs` ends in `text` (characters); empty when the engine cannot tell. Lets a caller
    # judge the confidence of the part of the text left after the user typed its start.
    token_ends: list[int] = field(default_factory=list)
    # With `infill(end_check=True)`, a text that ended at a line break or the end of the fill: the log-probability
    # that the fill ends right after its text, so the text closes the gap to the code after the cursor. None when
    # not asked for or the engine cannot tell.
    end_logprob: float | None = None

    @property
    def mean_logprob(self) -> float | None:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None


def line_end_to_stop_at(text: str, cancel: CancelToken | None) -> int | None:
    """Where to end a generation whose time budget ran out (`CancelToken.wind_down_at`): after its last
    complete line of code, once it has one; None to go on."""
    if cancel is None or not cancel.winding_down():
        return None
    end = text.rfind("\n")
    return end if end > 0 and text[:end].strip() else None


def kept_tokens(token_ends: list[int], cut: int) -> int:
    """How many tokens keep some of their text when the text is cut at `cut` (the one carrying a stop string may
    carry text before it too)."""
    return sum(1 for i, end in enumerate(token_ends) if (token_ends[i - 1] if i else 0) < cut)


@dataclass
class FimFormat:
    prefix: str
    suffix: str
    middle: str
    repo_name: str | None = None
    file_sep: str | None = None


@dataclass
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


class Engine(Protocol):
    """What completion and repair need from a model. `infill_many` and `score` are optional capabilities: an
    engine without a better way inherits EngineBase's defaults, so callers call them without asking first."""

    # read-only here: an engine may compute them (the fallback engine answers for whichever engine serves)
    @property
    def name(self) -> str: ...

    @property
    def fim(self) -> FimFormat | None: ...  # None: no FIM tokens (the tiny test model); infill is prefix-only

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
        code_first: bool = False,
        end_check: bool = False,
    ) -> Generation:
        """Generate the text between prefix and suffix. `context` is repo context placed first (stable, reused).

        `code_first`: the cursor sits on an empty line, so ending at once or breaking the line would leave it
        empty; engines that sample themselves take the best token that writes something (the local engine);
        others may ignore it.
        `end_check`: report `Generation.end_logprob` (the local engine; others may leave it None).
        """
        ...

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
        """One sampled `infill` per seed; the `seconds` of each is the time of the whole call."""
        ...

    def score(
        self, prefix: str, suffix: str, middle: str, *, context: str = "", cancel: CancelToken | None = None
    ) -> list[float]:
        """Log-probabilities of `middle` filling the gap between prefix and suffix, one per token, then one for
        ending the fill there (teacher forcing); [] when the engine cannot tell."""
        ...

    def prepare(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64,
                cancel: CancelToken | None = None) -> int:
        """Evaluate ahead the prompt `infill` would build for these arguments (the engine is idle: the user is
        likely to type there next), generating nothing, stopping soon once `cancel` is set; a later `infill` there
        reuses it. How many of the prompt's tokens the engine holds evaluated: 0 for an engine that keeps no prompt
        state (a server keeps its own)."""
        ...

    def pending(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64) -> int:
        """How many prompt tokens an `infill` with these arguments would evaluate now, after what the engine holds
        evaluated (its cache, prompts parked or prepared ahead); 0 when it cannot tell (a server keeps its own
        state). The completions choose a short prompt at a place whose full one would keep the user waiting."""
        ...

    def chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        seed: int | None = None,
        cancel: CancelToken | None = None,
    ) -> Generation: ...

    def count_tokens(self, text: str) -> int: ...

    def close(self) -> None: ...


class EngineBase:
    """What every engine subclasses: the defaults of Engine's optional capabilities. (Engine itself is a
    Protocol with read-only `name` and `fim`, which engines set as plain attributes; its properties would refuse
    that if engines inherited them.)"""

    def infill_many(
        self: Engine,
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
        """One by one, until `cancel` is set (the local engine decodes them side by side instead)."""
        out: list[Generation] = []
        for seed in seeds:
            if cancel is not None and cancel.is_set():
                break
            out.append(self.infill(prefix, suffix, context=context, max_tokens=max_tokens, stop=stop,
                                   temperature=temperature, seed=seed, cancel=cancel, code_first=code_first,
                                   end_check=end_check))
        total = sum(g.seconds for g in out)
        for g in out:
            g.seconds = total
        return out

    def score(
        self, prefix: str, suffix: str, middle: str, *, context: str = "", cancel: CancelToken | None = None
    ) -> list[float]:
        """Unscored: no log-probabilities to tell with."""
        return []

    def pending(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64) -> int:
        """Cannot tell: as if the prompt were held (a server keeps its own state)."""
        return 0
