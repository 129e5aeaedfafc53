"""A deterministic engine for tests (e2e, the VS Code extension's tests): no model, instant, predictable.

Infill continues the current line from a small table of rules keyed on the text before the cursor, so a test
can type and see a stable suggestion; every call is recorded so tests can assert a cache hit made no call.
Settings: `model.completion = "fake"`.
"""

from __future__ import annotations

import os
import re
import threading
import time
from itertools import accumulate

from greenpatch.engine.base import (
    CancelToken,
    ChatMessage,
    EngineBase,
    FimFormat,
    Generation,
    kept_tokens,
    line_end_to_stop_at,
)

FAKE_FIM = FimFormat("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>")

# (pattern on the current line before the cursor, completion of the rest of that line)
_RULES: list[tuple[str, str]] = [
    (r"def (\w+)\(self\)$", ":\n        return self._value"),
    (r"^\s*return a \+$", " b"),
    (r"^\s*return$", " result"),
    (r"^\s*def add\($", "a, b):"),
    (r"^\s*import$", " os"),
    (r"^\s*for$", " item in items:"),
    (r"^\s*print\($", '"hello")'),
]


PREPARE_STEP = 0.01  # seconds: the fake's step of a prompt evaluated ahead


def _prompt(prefix: str, suffix: str, context: str) -> str:
    """The fake's notion of a FIM prompt: context, the prefix up to the cursor's line, suffix, then that line."""
    head, _, line = prefix.rpartition("\n")
    return f"{context}\x00{head}\x01{suffix}\x02{line}"


class FakeEngine(EngineBase):
    name = "fake"
    fim: FimFormat | None = FAKE_FIM

    def __init__(self, *, delay: float = 0.0, per_token: float = 0.0, text: str | None = None,
                 texts: list[str] | None = None,
                 logprobs: list[float] | None = None, end_logprob: float | None = None,
                 samples: list[tuple[str, list[float], float]] | None = None, prepare_seconds: float = 0.0,
                 cold_prompts: bool = False) -> None:
        self.delay = delay
        self.per_token = per_token
        self.text = text  # when set, every infill answers this
        self.texts = list(texts or [])  # when set, greedy infills answer these in turn (before `text` and the rules)
        self.logprobs = logprobs  # when set, the log-probabilities of the first tokens (the rest get -0.05)
        self.end_logprob = end_logprob  # reported when asked (`end_check`)
        # when set, a sampled infill (temperature > 0) answers samples[seed]: (text, logprobs, end_logprob)
        self.samples = samples
        self.calls: list[dict[str, object]] = []
        # prepare() takes this long, in steps of PREPARE_STEP seconds, each ended early by a cancel
        self.prepare_seconds = prepare_seconds
        self.prepared: list[tuple[str, str, bool]] = []  # (prefix, suffix, whether it was evaluated to its end)
        self.preparing = threading.Event()  # set when a prepare() starts (tests wait for it)
        # when set, `pending` says a prompt neither infilled nor prepared to its end costs its tokens (a cold place);
        # otherwise it says every prompt is held
        self.cold_prompts = cold_prompts
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def _answer(self, prefix: str) -> str:
        if self.text is not None:
            return self.text
        line = prefix.rsplit("\n", 1)[-1]
        for pattern, completion in _RULES:
            if re.search(pattern, line):
                return completion
        return ""

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
        with self._lock:
            self._held.add(_prompt(prefix, suffix, context))
            self.calls.append({"prefix": prefix, "suffix": suffix, "context": context, "stop": stop,
                               "max_tokens": max_tokens, "code_first": code_first, "end_check": end_check,
                               "temperature": temperature, "seed": seed})
        started = time.perf_counter()
        if self.delay and cancel is not None and cancel.wait(self.delay):
            return Generation("", [], "cancelled", seconds=time.perf_counter() - started)
        if temperature > 0 and self.samples:
            text, logprobs, sample_end = self.samples[(seed or 0) % len(self.samples)]
            ends = list(accumulate(len(t) for t in re.findall(r"\s*\S+|\s+", text)))
            return Generation(text, list(logprobs), "stop", len(prefix) // 4, 0, time.perf_counter() - started,
                              token_ends=ends[: len(logprobs)], end_logprob=sample_end if end_check else None)
        text = self.texts.pop(0) if self.texts else self._answer(prefix)
        every = re.findall(r"\s*\S+|\s+", text)
        tokens = every[:max_tokens]
        out = ""
        end: int | None = None
        for i, token in enumerate(tokens):
            if cancel is not None and cancel.is_set():
                return Generation(out, [-0.05] * len(out.split()), "cancelled", seconds=time.perf_counter() - started)
            if self.per_token:
                time.sleep(self.per_token)
            out += token
            end = line_end_to_stop_at(out, cancel)
            if end is not None:  # out of time (see CancelToken.wind_down_at): keep the complete lines
                out, tokens = out[:end], tokens[: i + 1]
                break
        reason = "time" if end is not None else "length" if len(every) > max_tokens else "eos"
        for s in stop or []:
            if s and s in out:
                out = out[: out.index(s)]
                reason = "stop"
        ends = list(accumulate(map(len, tokens)))
        ends = [min(e, len(out)) for e in ends[: kept_tokens(ends, len(out))]]
        given = self.logprobs or []
        logprobs = [given[i] if i < len(given) else -0.05 for i in range(len(ends))]
        end_logprob = self.end_logprob if end_check and reason in ("stop", "eos") else None
        return Generation(out, logprobs, reason, len(prefix) // 4, 0, time.perf_counter() - started,
                          token_ends=ends, end_logprob=end_logprob)

    def prepare(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64,
                cancel: CancelToken | None = None) -> int:
        """Stands for evaluating a prompt ahead: `prepare_seconds` of waiting that a cancel ends within a step."""
        self.preparing.set()
        seconds, waited = self.prepare_seconds, 0.0
        while waited < seconds:
            if cancel is not None and cancel.wait(PREPARE_STEP):
                break
            if cancel is None:
                time.sleep(PREPARE_STEP)
            waited += PREPARE_STEP
        done = waited >= seconds
        with self._lock:
            self.prepared.append((prefix, suffix, done))
            if done:
                self._held.add(_prompt(prefix, suffix, context))
        return len(prefix) // 4 if done else int(len(prefix) // 4 * waited / seconds)

    def pending(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64) -> int:
        """With `cold_prompts`: the tokens of the prompt after its longest start held by a prompt infilled or prepared
        to its end before (the cursor's line comes last, as in the local engine's); without: 0."""
        if not self.cold_prompts:
            return 0
        prompt = _prompt(prefix, suffix, context)
        with self._lock:
            held = max((len(os.path.commonprefix([prompt, h])) for h in self._held), default=0)
        return self.count_tokens(prompt[held:])

    def score(self, prefix: str, suffix: str, middle: str, *, context: str = "",
              cancel: CancelToken | None = None) -> list[float]:
        """The fake has no distribution to score with: unscored, like an engine without log-probabilities."""
        return []

    def chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        seed: int | None = None,
        cancel: CancelToken | None = None,
    ) -> Generation:
        with self._lock:
            self.calls.append({"messages": messages})
        return Generation(self.text or "", [-0.1], "eos")

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4) if text else 0

    def close(self) -> None:
        pass
