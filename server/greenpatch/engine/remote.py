"""An engine that asks an OpenAI-compatible inference server (llama.cpp, llama-cpp-python, vLLM, Ollama).

Fill-in-the-middle goes through `/v1/completions` with the model's FIM tokens written into the prompt (fim.py);
when the tokens are unknown, llama.cpp's own `/infill` is tried once (it knows the model's tokens), and failing
that the prompt is prefix-only. Repairs go through `/v1/chat/completions`. Every generation is streamed, so a
cancel closes the request at once (transport.py: connections, retries, server-sent events, the API key).
"""

from __future__ import annotations

import logging
import math
import time
from itertools import accumulate
from typing import Any

from greenpatch.cancel import CancelToken
from greenpatch.config import EngineSettings, Settings
from greenpatch.engine.base import (
    CHARS_PER_TOKEN,
    ChatMessage,
    EngineBase,
    FimFormat,
    Generation,
    kept_tokens,
    line_end_to_stop_at,
)
from greenpatch.engine.fim import build_fim_prompt, fim_for_model, fim_for_served_model
from greenpatch.engine.transport import HttpClient, RemoteAuthError, RemoteError

log = logging.getLogger(__name__)

# The FIM helpers and the errors are imported from here too (tests, bench): they are part of this engine's face.
__all__ = [
    "RemoteAuthError",
    "RemoteEngine",
    "RemoteError",
    "build_fim_prompt",
    "fim_for_model",
    "fim_for_served_model",
]


def _stop_reason(finish: Any) -> str:
    if finish in ("length", "limit"):
        return "length"
    if finish in ("eos", "time"):
        return str(finish)
    return "stop"


class RemoteEngine(EngineBase):
    """The Engine protocol over an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        api_key_env: str = "",
        timeout: float = 30.0,
        fim: FimFormat | None = None,
        retries: int = 2,
        logprobs: bool = True,
    ) -> None:
        self._http = HttpClient(url, timeout=timeout, api_key_env=api_key_env, retries=retries)
        self.url = str(self._http.target)
        self.model = model
        self.timeout = timeout
        self.fim: FimFormat | None = fim or (fim_for_served_model(model) if model else None)
        self.name = f"remote:{model or self.url}"
        self._served_model: str | None = model or None
        self._infill_endpoint: bool | None = None  # llama.cpp /infill: None until tried
        self._said_no_logprobs: set[str] = set()
        self._send_logprobs = logprobs

    @classmethod
    def from_settings(cls, settings: EngineSettings | Settings, fim: FimFormat | None = None) -> RemoteEngine:
        engine = settings.engine if isinstance(settings, Settings) else settings
        return cls(
            engine.url,
            model=engine.model,
            api_key_env=engine.api_key_env,
            timeout=engine.timeout,
            fim=fim,
            logprobs=engine.logprobs,
        )

    # --- the Engine protocol -------------------------------------------------------------------------------

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
        if self.fim is None and self._infill_endpoint is not False:
            generation = self._llama_infill(
                prefix, suffix, context, max_tokens, stop, temperature, seed, cancel
            )
            if generation is not None:
                return generation
        if self.fim is not None:
            prompt = build_fim_prompt(self.fim, prefix, suffix, context)
        else:
            prompt = context + prefix  # no FIM tokens known and no /infill: what comes before the cursor only
        body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature}
        return self._generate("/v1/completions", body, stop, seed, cancel, chat=False)

    def prepare(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64,
                cancel: CancelToken | None = None) -> int:
        return 0  # the server keeps (and reuses) its own prompt state

    def chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        seed: int | None = None,
        cancel: CancelToken | None = None,
    ) -> Generation:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        return self._generate("/v1/chat/completions", body, None, seed, cancel, chat=True)

    def count_tokens(self, text: str) -> int:
        # An estimate: a round trip per call would cost more than the budgets it decides (servers differ in
        # whether they expose a tokenizer at all).
        return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0

    def close(self) -> None:
        self._http.close()

    # --- health --------------------------------------------------------------------------------------------

    def models(self, timeout: float | None = None) -> list[str]:
        """Ids of the models the server serves (GET /v1/models)."""
        payload = self._http.get_json("/v1/models", timeout=timeout)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise RemoteError(f"the server at {self.url} answered /v1/models without a model list")
        return [str(item.get("id")) for item in data if isinstance(item, dict) and item.get("id")]

    def probe(self, timeout: float = 2.0) -> float:
        """Seconds a model listing takes; raises RemoteError/RemoteAuthError when the server is not usable."""
        start = time.monotonic()
        self.models(timeout=timeout)
        return time.monotonic() - start

    # --- internals -----------------------------------------------------------------------------------------

    def _model_field(self) -> str | None:
        if self._served_model is None:
            try:
                served = self.models()
            except RemoteError as exc:
                if exc.http_status is None:
                    raise  # not reachable: the generation request would fail the same way
                served = []  # answered, but no usable listing: send no model name
            self._served_model = served[0] if served else ""
            if self._served_model and self.fim is None:
                self.fim = fim_for_served_model(self._served_model)
        return self._served_model or None

    def _generate(
        self,
        path: str,
        body: dict[str, Any],
        stop: list[str] | None,
        seed: int | None,
        cancel: CancelToken | None,
        *,
        chat: bool,
    ) -> Generation:
        start = time.monotonic()
        if cancel is not None and cancel.is_set():
            return Generation("", stop_reason="cancelled")
        model = self._model_field()
        if model:
            body["model"] = model
        if stop:
            body["stop"] = stop
        if seed is not None:
            body["seed"] = seed
        body["stream"] = True
        # Plain sampling like the in-process engine. llama-cpp-python's server otherwise applies a 1.1 repeat
        # penalty (and min_p/top_p cuts), which changes greedy completions; OpenAI-style servers ignore the field.
        body.setdefault("top_p", 1.0)
        body.setdefault("repeat_penalty", 1.0)
        if self._send_logprobs:
            body["logprobs"] = True if chat else 1
        try:
            generation = self._read_stream(path, body, stop, cancel, chat=chat)
        except RemoteError as exc:
            # Servers that cannot compute log-probabilities say so (HTTP 400/422/500 naming them), or, like
            # llama-cpp-python started with --logits_all false, end the stream before its first event.
            refused = exc.http_status in (400, 422, 500) and "logprob" in str(exc).lower()
            if not (self._send_logprobs and (refused or exc.empty_stream)):
                raise
            body.pop("logprobs", None)
            generation = self._read_stream(path, body, stop, cancel, chat=chat)
            self._send_logprobs = False
            log.warning(
                "%s cannot return log-probabilities (%s); the confidence gate and ranking fall back to tests only",
                self.url,
                exc.message,
            )
        generation.seconds = time.monotonic() - start
        if (
            self._send_logprobs
            and generation.text
            and not generation.logprobs
            and generation.stop_reason != "cancelled"
        ):
            self._no_logprobs(path)
        return generation

    def _read_stream(
        self,
        path: str,
        body: dict[str, Any],
        stop: list[str] | None,
        cancel: CancelToken | None,
        *,
        chat: bool,
    ) -> Generation:
        pieces: list[str] = []
        logprobs: list[float] = []
        token_texts: list[str] = []  # each token's text, where the server says it (to tell where tokens end)
        finish: Any = None
        prompt_tokens = reused = 0
        timed: int | None = None  # where the text ends when the time budget ran out (see line_end_to_stop_at)
        with self._http.stream(path, body, cancel=cancel) as events:
            for event in events:
                choices = event.get("choices") or []
                choice = choices[0] if choices and isinstance(choices[0], dict) else {}
                if chat:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content") or ""
                    content = (choice.get("logprobs") or {}).get("content") or []
                    known = [t for t in content if isinstance(t, dict) and t.get("logprob") is not None]
                    logprobs.extend(float(t["logprob"]) for t in known)
                    token_texts.extend(str(t.get("token", "")) for t in known)
                else:
                    piece = choice.get("text") or ""
                    values = (choice.get("logprobs") or {}).get("token_logprobs") or []
                    logprobs.extend(float(v) for v in values if v is not None)
                    names = (choice.get("logprobs") or {}).get("tokens") or []
                    if len(names) == len(values):
                        token_texts.extend(str(t) for t, v in zip(names, values) if v is not None)
                pieces.append(piece)
                finish = choice.get("finish_reason") or finish
                usage = event.get("usage") or {}
                prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
                timings = event.get("timings") or {}  # llama.cpp's server
                if timings:
                    reused = int(timings.get("cache_n") or 0)
                    prompt_tokens = int(timings.get("prompt_n") or 0) + reused
                if stop and piece and _cut_at_stop("".join(pieces), stop) is not None:
                    finish = "stop"
                    break  # the server ignored the stop strings: stop reading (the connection is not reused)
                timed = line_end_to_stop_at("".join(pieces), cancel) if "\n" in piece else None
                if timed is not None:
                    finish = "time"
                    break  # out of time: keep the complete lines (the connection is not reused)
            if events.was_cancelled:
                return Generation("".join(pieces), logprobs, "cancelled", prompt_tokens, reused)
            if events.why_stopped == "timeout":
                raise RemoteError(
                    f"the server at {self.url} did not finish within {self.timeout:g} s",
                    "raise engine.timeout or use a faster model",
                )
            if finish is None and not events.saw_done:
                if not pieces:
                    raise RemoteError(
                        f"the server at {self.url} ended the response without any data", empty_stream=True
                    )
                raise RemoteError(f"the server at {self.url} dropped the connection mid-response")
        text = "".join(pieces)
        ends = _token_ends(token_texts, text) if len(token_texts) == len(logprobs) else []
        cut = timed if timed is not None else _cut_at_stop(text, stop) if stop else None
        if cut is not None:
            text = text[:cut]
            if ends:
                n = kept_tokens(ends, cut)
                logprobs, ends = logprobs[:n], [min(e, cut) for e in ends[:n]]
        return Generation(text, logprobs, _stop_reason(finish), prompt_tokens, reused, token_ends=ends)

    def _llama_infill(
        self,
        prefix: str,
        suffix: str,
        context: str,
        max_tokens: int,
        stop: list[str] | None,
        temperature: float,
        seed: int | None,
        cancel: CancelToken | None,
    ) -> Generation | None:
        """llama.cpp's /infill (it applies the model's own FIM tokens). None when the server has no such endpoint."""
        start = time.monotonic()
        body: dict[str, Any] = {
            "input_prefix": prefix,
            "input_suffix": suffix,
            "n_predict": max_tokens,
            "temperature": temperature,
            "stream": True,
            "n_probs": 1,
            "cache_prompt": True,
        }
        if context:
            body["input_extra"] = [{"filename": "context", "text": context}]
        if stop:
            body["stop"] = stop
        if seed is not None:
            body["seed"] = seed
        pieces: list[str] = []
        logprobs: list[float] = []
        finish = ""
        prompt_tokens = reused = 0
        try:
            with self._http.stream("/infill", body, cancel=cancel) as events:
                for event in events:
                    if self._infill_endpoint is None:
                        self._infill_endpoint = True
                        log.info("%s: using llama.cpp's /infill (model FIM tokens unknown here)", self.url)
                    pieces.append(str(event.get("content") or ""))
                    for prob in event.get("completion_probabilities") or []:
                        if isinstance(prob, dict):
                            if prob.get("logprob") is not None:
                                logprobs.append(float(prob["logprob"]))
                            elif prob.get("probs"):  # older llama.cpp: probabilities, not logs
                                top = prob["probs"][0].get("prob")
                                if top:
                                    logprobs.append(math.log(float(top)))
                    if event.get("stop"):
                        finish = (
                            "length"
                            if event.get("stop_type") == "limit" or event.get("stopped_limit")
                            else "stop"
                        )
                        prompt_tokens = int(event.get("tokens_evaluated") or 0)
                        reused = int(event.get("tokens_cached") or 0)
                if events.was_cancelled:
                    return Generation(
                        "".join(pieces), logprobs, "cancelled", seconds=time.monotonic() - start
                    )
                if events.why_stopped == "timeout":
                    raise RemoteError(f"the server at {self.url} did not finish within {self.timeout:g} s")
                if not finish and not events.saw_done:
                    raise RemoteError(f"the server at {self.url} dropped the connection mid-response")
        except RemoteError as exc:
            if self._infill_endpoint is None and exc.http_status in (400, 404, 405, 422, 500, 501):
                self._infill_endpoint = False
                log.info(
                    "%s has no usable /infill (%s); %s",
                    self.url,
                    exc.message,
                    "completions use the prefix only" if self.fim is None else "using FIM tokens",
                )
                return None
            raise
        generation = Generation(
            "".join(pieces), logprobs, finish or "stop", prompt_tokens, reused, time.monotonic() - start
        )
        if generation.text and not logprobs:
            self._no_logprobs("/infill")
        return generation

    def _no_logprobs(self, path: str) -> None:
        if path not in self._said_no_logprobs:
            self._said_no_logprobs.add(path)
            log.warning(
                "%s returns no log-probabilities on %s; the confidence gate and ranking fall back to tests only",
                self.url,
                path,
            )


def _token_ends(token_texts: list[str], text: str) -> list[int]:
    """Where each token ends in `text`; empty when the tokens do not spell the text (bytes split mid-character)."""
    return list(accumulate(map(len, token_texts))) if "".join(token_texts) == text else []


def _cut_at_stop(text: str, stop: list[str]) -> int | None:
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return min(cuts) if cuts else None
