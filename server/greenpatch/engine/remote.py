"""An engine that asks an OpenAI-compatible inference server (llama.cpp, llama-cpp-python, vLLM, Ollama).

Fill-in-the-middle goes through `/v1/completions` with the model's FIM tokens written into the prompt; when the
tokens are unknown, llama.cpp's own `/infill` is tried once (it knows the model's tokens), and failing that the
prompt is prefix-only. Repairs go through `/v1/chat/completions`. Every generation is streamed (server-sent
events) so that a cancelled request is closed at once: a small watcher thread shuts the socket down when the
CancelToken fires or the deadline passes, which unblocks the reading thread and tells the server to stop.

Only the standard library is used (http.client keeps one connection alive per in-flight request and reuses it).
The API key is read from the environment variable named in `engine.apiKeyEnv` on every request; it is never
stored on the engine, in settings files or in logs.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit

from greenpatch.cancel import CancelToken
from greenpatch.config import EngineSettings, Settings
from greenpatch.engine.base import ChatMessage, FimFormat, Generation, kept_tokens, line_end_to_stop_at
from greenpatch.errors import ConfigError, EngineUnavailable, GreenpatchError

log = logging.getLogger(__name__)

__all__ = [
    "RemoteAuthError",
    "RemoteEngine",
    "RemoteError",
    "check_remote",
    "fim_for_model",
    "fim_for_served_model",
]

# FIM tokens of model families commonly served, matched on the lower-cased model name (all parts must occur).
# Only prefix-suffix-middle formats: the same order the local engine uses.
KNOWN_FIM: list[tuple[tuple[str, ...], FimFormat]] = [
    (
        ("qwen", "coder"),
        FimFormat("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>"),
    ),
    (("starcoder",), FimFormat("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<reponame>", "<file_sep>")),
    (("deepseek", "coder"), FimFormat("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")),
]

RETRY_STATUS = {429, 502, 503, 504}
CONNECT_TIMEOUT = 5.0  # a blackholed host must not eat the whole request timeout
CANCEL_POLL = 0.02  # how often the watcher looks at the CancelToken (CancelToken has no callback)
CHARS_PER_TOKEN = 3.0  # conservative for code with BPE vocabularies: budgets err on the short side


class RemoteError(EngineUnavailable):
    """The server could not be reached, failed, or answered something unusable."""

    def __init__(
        self, message: str, hint: str | None = None, *, status: int | None = None, empty_stream: bool = False
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.empty_stream = empty_stream  # the response ended before its first event


class RemoteAuthError(ConfigError):
    """The server rejected the API key (or wants one and none was sent)."""


def fim_for_model(model: str) -> FimFormat | None:
    """The FIM tokens of a served model, from its name; None when the family is unknown."""
    name = model.lower()
    for parts, fim in KNOWN_FIM:
        if all(part in name for part in parts):
            return fim
    return None


def fim_for_served_model(model: str) -> FimFormat | None:
    """FIM tokens for a served model id: greenpatch's own model files by name (a server started on a file from
    greenpatch's cache lists its path), else the family from the name."""
    stem = model.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        from greenpatch.engine.models import load_manifest

        for spec in load_manifest().values():
            if stem in (spec.name, spec.file) or stem == f"{spec.name}.gguf":
                return spec.fim
    except (ImportError, GreenpatchError) as exc:
        log.debug("no manifest for FIM lookup: %s", exc)
    return fim_for_model(model)


def build_fim_prompt(fim: FimFormat, prefix: str, suffix: str, context: str = "") -> str:
    """Prefix-suffix-middle order with the stable repo context first, so servers can reuse its cached prefix.

    As in the local engine, the start of the cursor's line goes after the middle token: typing along a line then
    only appends to the prompt, so a server that reuses the longest common prefix re-evaluates a few tokens per
    keystroke instead of the whole suffix.
    """
    cut = prefix.rfind("\n") + 1
    return f"{context}{fim.prefix}{prefix[:cut]}{fim.suffix}{suffix}{fim.middle}{prefix[cut:]}"


@dataclass
class _Target:
    scheme: str
    host: str
    port: int
    base_path: str  # without a trailing "/v1": endpoints add their own

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"engine.url {url!r} is not an http(s) URL",
                "use the server's base URL, e.g. http://host:8080",
            )
        path = parts.path.rstrip("/")
        path = path.removesuffix("/v1")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, path)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.base_path}"


class _Http:
    """Keep-alive connections to one server, bounded retries with backoff, SSE streams that close on cancel."""

    def __init__(self, url: str, *, timeout: float, api_key_env: str, retries: int = 2) -> None:
        self.target = _Target.parse(url)
        self.timeout = timeout
        self.api_key_env = api_key_env
        self.retries = retries
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        if api_key_env and not os.environ.get(api_key_env):
            raise ConfigError(
                f"environment variable {api_key_env} (named in engine.apiKeyEnv) is not set",
                f"export {api_key_env}=<the server's API key> before starting the editor, or clear engine.apiKeyEnv",
            )

    # --- connections ---------------------------------------------------------------------------------------

    def _new_connection(self) -> http.client.HTTPConnection:
        timeout = min(CONNECT_TIMEOUT, self.timeout)
        if self.target.scheme == "https":
            return http.client.HTTPSConnection(
                self.target.host, self.target.port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.target.host, self.target.port, timeout=timeout)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new_connection(), False

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 4:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _headers(self, streaming: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if streaming else "application/json",
        }
        if self.api_key_env:
            key = os.environ.get(self.api_key_env, "")
            if key:
                headers["Authorization"] = f"Bearer {key}"
        return headers

    # --- requests ------------------------------------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        streaming: bool,
        deadline: float,
        watch: _Watch | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request and return its response headers, retrying what is safe to retry."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        full_path = self.target.base_path + path
        attempt = 0
        while True:
            if watch is not None and watch.why_stopped:
                raise _Stopped
            conn, reused = self._take()
            try:
                if conn.sock is None:
                    conn.timeout = min(CONNECT_TIMEOUT, max(0.05, deadline - time.monotonic()))
                    conn.connect()
                assert conn.sock is not None
                if watch is not None:
                    watch.attach(conn)
                # A little past the deadline: the stream's watcher enforces the deadline itself, with a clear error.
                conn.sock.settimeout(max(0.05, deadline - time.monotonic()) + (1.0 if streaming else 0.0))
                conn.request(method, full_path, body=data, headers=self._headers(streaming))
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if watch is not None and watch.why_stopped:
                    raise _Stopped from None
                if reused and isinstance(
                    exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                ):
                    continue  # the server dropped an idle keep-alive connection; this request never reached it
                failure: str = _describe(exc)
                status = None
            else:
                if resp.status < 400:
                    return conn, resp
                failure = _http_failure(resp)
                status = resp.status
                conn.close()
                if resp.status in (401, 403):
                    hint = (
                        f"check that {self.api_key_env} holds the server's key"
                        if self.api_key_env
                        else "the server wants an API key: set engine.apiKeyEnv to the name of a variable holding it"
                    )
                    raise RemoteAuthError(
                        f"the server at {self.target} rejected the API key (HTTP {resp.status})", hint
                    )
                if resp.status not in RETRY_STATUS:
                    raise RemoteError(
                        f"the server at {self.target} answered {failure} to {path}", status=resp.status
                    )
            attempt += 1
            backoff = 0.1 * 2 ** (attempt - 1) * (1 + random.random() / 2)
            if attempt > self.retries or time.monotonic() + backoff >= deadline:
                raise RemoteError(
                    f"the server at {self.target} is not answering ({failure})",
                    "check that it is running; greenpatch retries automatically",
                    status=status,
                )
            if watch is not None and watch.cancel is not None:
                watch.cancel.wait(backoff)  # the loop's first check sees a cancel or a passed deadline
            else:
                time.sleep(backoff)

    def get_json(self, path: str, *, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        conn, resp = self._open("GET", path, None, streaming=False, deadline=deadline)
        return self._read_json(conn, resp, path)

    def post_json(self, path: str, body: dict[str, Any], *, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        conn, resp = self._open("POST", path, body, streaming=False, deadline=deadline)
        return self._read_json(conn, resp, path)

    def _read_json(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, path: str) -> Any:
        try:
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RemoteError(
                f"the server at {self.target} dropped the connection ({_describe(exc)})"
            ) from None
        self._give_back(conn)
        try:
            return json.loads(raw)
        except ValueError:
            raise RemoteError(
                f"the server at {self.target} answered {path} with something that is not JSON"
            ) from None

    @contextmanager
    def stream(
        self, path: str, body: dict[str, Any], *, cancel: CancelToken | None, timeout: float | None = None
    ) -> Iterator[_EventStream]:
        """POST with stream=true; yields an iterator of parsed events that ends early on cancel or deadline."""
        watch = _Watch(cancel, time.monotonic() + (timeout or self.timeout))
        try:
            try:
                conn, resp = self._open(
                    "POST", path, body, streaming=True, deadline=watch.deadline, watch=watch
                )
            except _Stopped:
                yield _EventStream(None, watch, str(self.target))
                return
            events = _EventStream(resp, watch, str(self.target))
            try:
                yield events
            finally:
                watch.stop()
                if events.finished_cleanly and not watch.why_stopped:
                    self._give_back(conn)
                else:
                    conn.close()
        finally:
            watch.stop()


class _Stopped(Exception):
    """The watch fired (cancel or deadline) before the response headers arrived."""


class _Watch:
    """A thread that shuts the request's socket down when the CancelToken fires or the deadline passes.

    That unblocks a reader stuck in recv() at once, and the server sees the client go away and stops generating.
    It runs from before the request is sent, so a cancel during a long prompt evaluation also closes at once.
    """

    def __init__(self, cancel: CancelToken | None, deadline: float) -> None:
        self.cancel = cancel
        self.deadline = deadline
        self.why_stopped = ""  # "cancel" | "timeout" once fired
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="greenpatch-remote-watch", daemon=True)
        self._thread.start()

    def attach(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conn = conn
            fired = bool(self.why_stopped)
        if fired:
            self._shutdown(conn)

    def _run(self) -> None:
        while not self._done.is_set():
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._fire("timeout")
                return
            step = min(CANCEL_POLL, remaining)
            if self.cancel is not None:
                if self.cancel.wait(step):
                    self._fire("cancel")
                    return
            elif self._done.wait(step * 10):
                return

    def _fire(self, why: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.why_stopped = why
            conn = self._conn
        if conn is not None:
            self._shutdown(conn)

    @staticmethod
    def _shutdown(conn: http.client.HTTPConnection) -> None:
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        with self._lock:
            self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


class _EventStream:
    """Server-sent events of one response; ends early (why_stopped set) when the watch fired."""

    def __init__(
        self,
        resp: http.client.HTTPResponse | None,
        watch: _Watch,
        server: str,
    ) -> None:
        self.resp = resp
        self.watch = watch
        self.server = server
        self.finished_cleanly = False
        self.saw_done = False

    @property
    def why_stopped(self) -> str:
        return self.watch.why_stopped

    @property
    def was_cancelled(self) -> bool:
        return self.watch.why_stopped == "cancel"

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.resp is None:
            return
        data: list[str] = []
        while True:
            try:
                raw = self.resp.readline(1 << 20)
            except (OSError, http.client.HTTPException) as exc:
                if self.why_stopped:
                    return
                raise RemoteError(
                    f"the server at {self.server} dropped the connection mid-response ({_describe(exc)})"
                ) from None
            if self.why_stopped:
                return
            if not raw:
                if data:
                    raise RemoteError(f"the server at {self.server} ended the response mid-event")
                # The body ended without [DONE] (llama.cpp's /infill never sends one): the caller decides from
                # the last event whether that was the end or a dropped connection.
                self.finished_cleanly = self.resp.isclosed()
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
                continue
            if line or not data:
                continue  # comments (": ping"), "event:" and "id:" lines, stray blank lines
            payload, data = "\n".join(data), []
            if payload.strip() == "[DONE]":
                self.saw_done = True
                self._drain()
                return
            try:
                event = json.loads(payload)
            except ValueError:
                raise RemoteError(
                    f"the server at {self.server} sent an event that is not JSON: {payload[:80]!r}"
                ) from None
            if isinstance(event, dict) and "error" in event and not event.get("choices"):
                raise RemoteError(f"the server at {self.server} failed mid-response: {_error_text(event)}")
            if isinstance(event, dict):
                yield event

    def _drain(self) -> None:
        """Read the rest of the body (the closing chunk) so the connection can carry the next request."""
        assert self.resp is not None
        try:
            for _ in range(64):
                if not self.resp.readline(1 << 16):
                    break
        except (OSError, http.client.HTTPException):
            return
        self.finished_cleanly = self.resp.isclosed() and not self.why_stopped


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed by the server"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload))
        if isinstance(error, dict):
            error = error.get("message", error)
        text = str(error)
    else:
        text = str(payload)
    return " ".join(text.split())[:200]


def _http_failure(resp: http.client.HTTPResponse) -> str:
    try:
        raw = resp.read(4096)
    except (OSError, http.client.HTTPException):
        raw = b""
    try:
        detail = _error_text(json.loads(raw))
    except ValueError:
        detail = " ".join(raw.decode("utf-8", "replace").split())[:200]
    return f"HTTP {resp.status}" + (f": {detail}" if detail else "")


def _stop_reason(finish: Any) -> str:
    if finish in ("length", "limit"):
        return "length"
    if finish in ("eos", "time"):
        return str(finish)
    return "stop"


class RemoteEngine:
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
        self._http = _Http(url, timeout=timeout, api_key_env=api_key_env, retries=retries)
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
                if exc.status is None:
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
            refused = exc.status in (400, 422, 500) and "logprob" in str(exc).lower()
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
            if self._infill_endpoint is None and exc.status in (400, 404, 405, 422, 500, 501):
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


# --- doctor ----------------------------------------------------------------------------------------------------


def check_remote(settings: Settings) -> list[tuple[bool, str]]:
    """`greenpatch doctor` lines for the configured server: reachable, model served, latency of a tiny request.

    Empty when no server is configured (engine.url is empty). Never raises for a server problem.
    """
    engine_settings = settings.engine
    if not engine_settings.url:
        return []
    checks: list[tuple[bool, str]] = []
    try:
        engine = RemoteEngine.from_settings(engine_settings)
    except GreenpatchError as exc:
        return [(False, f"remote engine: {exc}")]
    try:
        try:
            start = time.monotonic()
            served = engine.models(timeout=min(engine_settings.timeout, 5.0))
            ms = (time.monotonic() - start) * 1000
        except GreenpatchError as exc:
            return [(False, f"remote engine {engine.url}: {exc}")]
        checks.append((True, f"remote engine {engine.url} reachable ({ms:.0f} ms to list models)"))
        wanted = engine_settings.model
        if wanted and wanted not in served:
            checks.append(
                (False, f"model {wanted!r} is not served there (served: {', '.join(served) or 'none'})")
            )
            return checks
        model = wanted or (served[0] if served else "")
        checks.append(
            (True, f"model {model!r}" + ("" if wanted else " (the server's first; set engine.model to pick)"))
        )
        engine.fim = engine.fim or fim_for_served_model(model)
        checks.append(
            (
                True,
                "fill-in-the-middle tokens: "
                + (
                    repr(engine.fim.prefix)
                    if engine.fim
                    else "unknown for this model name "
                    "(llama.cpp's /infill is tried, else prefix-only completions)"
                ),
            )
        )
        try:
            generation = engine.infill("def add(a, b):\n    return", "\n", max_tokens=4)
        except GreenpatchError as exc:
            checks.append((False, f"a tiny completion failed: {exc}"))
            return checks
        checks.append(
            (
                True,
                f"a tiny completion took {generation.seconds * 1000:.0f} ms"
                + (
                    "" if generation.logprobs else " (no log-probabilities: ranking falls back to tests only)"
                ),
            )
        )
        return checks
    finally:
        engine.close()
