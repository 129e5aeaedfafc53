"""RemoteEngine's HTTP behaviour against a scripted stdlib server; FallbackEngine against stub engines."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.engine.base import ChatMessage, Generation
from greenpatch.engine.fallback import EngineStatus, FallbackEngine
from greenpatch.engine.remote import (
    RemoteAuthError,
    RemoteEngine,
    RemoteError,
    build_fim_prompt,
    fim_for_model,
)
from greenpatch.errors import ConfigError, EngineUnavailable, ErrorKind, ModelNotInstalled

QWEN = fim_for_model("Qwen2.5-Coder-7B-Instruct")
CODER = "qwen2.5-coder-7b"  # a name whose FIM tokens are known, so infill goes to /v1/completions


@dataclass
class Reply:
    status: int = 200
    events: list[Any] | None = None  # SSE: dicts, "[DONE]", or a threading.Event to stall on
    body: Any = None  # JSON
    close_silently: bool = False  # drop the connection after replying, without saying Connection: close
    stall_first: threading.Event | None = (
        None  # wait on this before sending anything (a long prompt evaluation)
    )


@dataclass
class Seen:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    client_port: int


@dataclass
class Script:
    route: Callable[[str, Any], Reply]
    seen: list[Seen] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: Script

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.script.seen.append(Seen(method, self.path, body, dict(self.headers), self.client_address[1]))
        reply = self.script.route(self.path, body)
        if reply.stall_first is not None:
            reply.stall_first.wait(10)
        try:
            if reply.events is None:
                data = json.dumps(reply.body if reply.body is not None else {}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in reply.events:
                    if isinstance(event, threading.Event):
                        event.wait(10)
                        continue
                    payload = event if isinstance(event, str) else json.dumps(event)
                    chunk = f"data: {payload}\n\n".encode()
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return
        if reply.close_silently:
            self.close_connection = True


@pytest.fixture
def fake() -> Iterator[tuple[str, Script]]:
    script = Script(route=lambda path, body: Reply(404, body={"detail": "Not Found"}))
    handler = type("Handler", (_Handler,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


def completion_events(*pieces: str, logprobs: bool = True) -> list[Any]:
    events: list[Any] = []
    for piece in pieces:
        lp = {"tokens": [piece], "token_logprobs": [-0.5]} if logprobs else None
        events.append({"choices": [{"text": piece, "logprobs": lp, "finish_reason": None}]})
    events.append({"choices": [{"text": "", "logprobs": None, "finish_reason": "stop"}]})
    events.append("[DONE]")
    return events


def test_typing_along_a_line_only_appends_to_the_fim_prompt() -> None:
    before = build_fim_prompt(QWEN, "def f(x):\n    ret", "\n\nprint(f(1))\n")  # type: ignore[arg-type]
    after = build_fim_prompt(QWEN, "def f(x):\n    retu", "\n\nprint(f(1))\n")  # type: ignore[arg-type]
    assert after == before + "u", "the server can reuse everything it evaluated for the previous keystroke"
    assert before == "<|fim_prefix|>def f(x):\n<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>    ret"


def test_known_models_get_a_fim_prompt_with_context_first_and_every_option_sent(
    fake: tuple[str, Script],
) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(events=completion_events(" a", " + b"))
    engine = RemoteEngine(url, model="Qwen2.5-Coder-7B-Instruct")

    generation = engine.infill("return", "\n", context="# ctx\n", max_tokens=7, stop=["\n"], seed=3)

    assert generation.text == " a + b" and generation.logprobs == [-0.5, -0.5]
    assert generation.token_ends == [2, 6], "the tokens the server names tell where each ends"
    assert generation.stop_reason == "stop"
    sent = script.seen[-1]
    assert sent.path == "/v1/completions"
    assert sent.body["prompt"] == "# ctx\n<|fim_prefix|><|fim_suffix|>\n<|fim_middle|>return"
    assert sent.body["prompt"] == build_fim_prompt(QWEN, "return", "\n", "# ctx\n")  # type: ignore[arg-type]
    assert sent.body | {"prompt": ""} == {
        "prompt": "",
        "max_tokens": 7,
        "temperature": 0.0,
        "model": "Qwen2.5-Coder-7B-Instruct",
        "stop": ["\n"],
        "seed": 3,
        "stream": True,
        "logprobs": 1,
        "top_p": 1.0,
        "repeat_penalty": 1.0,
    }


def test_unknown_models_use_llama_cpp_infill_and_its_log_probabilities(fake: tuple[str, Script]) -> None:
    url, script = fake

    def route(path: str, body: Any) -> Reply:
        if path == "/v1/models":
            return Reply(body={"data": [{"id": "mystery-model"}]})
        assert path == "/infill"
        return Reply(
            events=[
                {
                    "content": " a",
                    "stop": False,
                    "completion_probabilities": [{"token": " a", "logprob": -0.25}],
                },
                {
                    "content": " + b",
                    "stop": False,
                    "completion_probabilities": [{"token": " + b", "logprob": -0.75}],
                },
                {
                    "content": "",
                    "stop": True,
                    "stop_type": "limit",
                    "tokens_evaluated": 40,
                    "tokens_cached": 30,
                },
            ]
        )

    script.route = route
    engine = RemoteEngine(url)

    generation = engine.infill("return", "\n", context="ctx")

    assert (generation.text, generation.logprobs) == (" a + b", [-0.25, -0.75])
    assert (generation.stop_reason, generation.prompt_tokens, generation.reused_tokens) == ("length", 40, 30)
    body = script.seen[-1].body
    assert body["input_prefix"] == "return" and body["input_suffix"] == "\n"
    assert body["input_extra"] == [{"filename": "context", "text": "ctx"}]


def test_without_fim_tokens_or_infill_the_prefix_alone_is_completed_and_infill_is_not_retried(
    fake: tuple[str, Script],
) -> None:
    url, script = fake

    def route(path: str, body: Any) -> Reply:
        if path == "/v1/completions":
            return Reply(events=completion_events("x"))
        return Reply(404, body={"detail": "Not Found"})

    script.route = route
    engine = RemoteEngine(url, model="tiny.gguf")

    engine.infill("pre", "suf", context="ctx ")
    engine.infill("pre", "suf", context="ctx ")

    assert [s.path for s in script.seen] == ["/infill", "/v1/completions", "/v1/completions"]
    assert script.seen[-1].body["prompt"] == "ctx pre"


def test_a_server_that_returns_no_log_probabilities_is_reported_once(
    fake: tuple[str, Script], caplog: pytest.LogCaptureFixture
) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(events=completion_events("x", logprobs=False))
    engine = RemoteEngine(url, model="starcoder2-3b")

    with caplog.at_level(logging.WARNING):
        first = engine.infill("a", "b")
        engine.infill("a", "b")

    assert first.text == "x" and first.logprobs == [] and first.mean_logprob is None
    assert len([r for r in caplog.records if "no log-probabilities" in r.message]) == 1


def test_a_server_refusing_the_logprobs_field_is_asked_again_without_it(fake: tuple[str, Script]) -> None:
    url, script = fake

    def route(path: str, body: Any) -> Reply:
        if "logprobs" in body:
            return Reply(400, body={"error": {"message": "logprobs is not supported"}})
        return Reply(events=completion_events("ok", logprobs=False))

    script.route = route
    engine = RemoteEngine(url, model="qwen-coder")

    assert engine.infill("a", "b").text == "ok"
    assert engine.infill("a", "b").text == "ok"
    assert ["logprobs" in s.body for s in script.seen] == [True, False, False]


def test_a_server_that_ends_the_stream_when_asked_for_logprobs_is_asked_again_without(
    fake: tuple[str, Script], caplog: pytest.LogCaptureFixture
) -> None:
    url, script = fake  # llama-cpp-python started with --logits_all false does this
    script.route = lambda path, body: Reply(
        events=[] if "logprobs" in body else completion_events("ok", logprobs=False)
    )
    engine = RemoteEngine(url, model=CODER)

    with caplog.at_level(logging.WARNING):
        assert engine.infill("a", "b").text == "ok"
        assert engine.infill("a", "b").text == "ok"

    assert ["logprobs" in s.body for s in script.seen] == [True, False, False]
    assert len([r for r in caplog.records if "cannot return log-probabilities" in r.message]) == 1


def test_chat_streams_deltas_and_their_log_probabilities(fake: tuple[str, Script]) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(
        events=[
            {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
            {
                "choices": [
                    {
                        "delta": {"content": "fixed"},
                        "logprobs": {"content": [{"token": "fixed", "logprob": -1.0}]},
                        "finish_reason": None,
                    }
                ]
            },
            {"choices": [{"delta": {}, "finish_reason": "length"}]},
            "[DONE]",
        ]
    )
    engine = RemoteEngine(url, model=CODER)

    generation = engine.chat([ChatMessage("user", "fix it")], max_tokens=5)

    assert (generation.text, generation.logprobs, generation.stop_reason) == ("fixed", [-1.0], "length")
    assert script.seen[-1].path == "/v1/chat/completions"
    assert script.seen[-1].body["messages"] == [{"role": "user", "content": "fix it"}]
    assert script.seen[-1].body["logprobs"] is True


def test_requests_share_one_keep_alive_connection(fake: tuple[str, Script]) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(events=completion_events("x"))
    engine = RemoteEngine(url, model=CODER)

    for _ in range(3):
        engine.infill("a", "b")

    assert len({s.client_port for s in script.seen}) == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_counting_as_a_retry(
    fake: tuple[str, Script],
) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(events=completion_events("x"), close_silently=True)
    engine = RemoteEngine(url, model=CODER, retries=0)

    assert engine.infill("a", "b").text == "x"
    assert engine.infill("a", "b").text == "x"  # pooled connection is dead; a fresh one is opened
    assert len({s.client_port for s in script.seen}) == 2


def test_transient_server_errors_are_retried_with_backoff(fake: tuple[str, Script]) -> None:
    url, script = fake
    replies = iter([Reply(503, body={"detail": "loading"}), Reply(events=completion_events("x"))])
    script.route = lambda path, body: next(replies)
    engine = RemoteEngine(url, model=CODER)

    assert engine.infill("a", "b").text == "x"
    assert len(script.seen) == 2


def test_a_persistent_failure_gives_up_after_the_bounded_retries_with_one_line(
    fake: tuple[str, Script],
) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(503, body={"detail": "overloaded"})
    engine = RemoteEngine(url, model=CODER, retries=2)

    with pytest.raises(RemoteError) as caught:
        engine.infill("a", "b")

    assert len(script.seen) == 3
    assert "HTTP 503: overloaded" in str(caught.value) and "\n" not in str(caught.value)


def test_a_server_that_is_not_running_is_reported_as_refused() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = RemoteEngine(f"http://127.0.0.1:{port}", model=CODER, retries=1)

    with pytest.raises(RemoteError, match="connection refused"):
        engine.infill("a", "b")


def test_cancel_closes_a_stalled_stream_at_once(fake: tuple[str, Script]) -> None:
    url, script = fake
    stall = threading.Event()
    script.route = lambda path, body: Reply(events=[completion_events("x")[0], stall])
    engine = RemoteEngine(url, model=CODER, timeout=10)
    cancel = CancelToken()
    threading.Timer(0.2, _cancel_noting_when, (cancel, cancelled_at := [])).start()

    generation = engine.infill("a", "b", cancel=cancel)
    returned = time.monotonic()
    stall.set()

    assert generation.stop_reason == "cancelled" and generation.text == "x"
    assert returned - cancelled_at[0] < engine.timeout / 2, "at once, not at the timeout"
    assert engine._http._idle == []  # a half-read response is never reused


def test_cancel_closes_the_request_while_the_server_has_not_answered_yet(fake: tuple[str, Script]) -> None:
    url, script = fake
    stall = threading.Event()
    script.route = lambda path, body: Reply(events=completion_events("x"), stall_first=stall)
    engine = RemoteEngine(url, model=CODER, timeout=10)
    cancel = CancelToken()
    threading.Timer(0.2, _cancel_noting_when, (cancel, cancelled_at := [])).start()

    generation = engine.infill("a", "b", cancel=cancel)
    returned = time.monotonic()
    stall.set()

    assert generation.stop_reason == "cancelled"
    assert returned - cancelled_at[0] < engine.timeout / 2, "at once, not at the timeout"


def _cancel_noting_when(cancel: CancelToken, when: list[float]) -> None:
    """Cancel, noting the time: a busy machine runs a timer late, so "how soon after the cancel" is measured from
    here, and held against the timeout the request would otherwise have waited for, not a fixed figure."""
    when.append(time.monotonic())
    cancel.cancel()


def test_a_stalled_server_times_out_within_the_timeout(fake: tuple[str, Script]) -> None:
    url, script = fake
    stall = threading.Event()
    script.route = lambda path, body: Reply(events=[stall])
    engine = RemoteEngine(url, model=CODER, timeout=0.5)

    start = time.monotonic()
    with pytest.raises(RemoteError, match="did not finish within 0.5 s"):
        engine.infill("a", "b")
    stall.set()

    # the stalled stream would never end: ended once, not retried, and far sooner than never (on a busy machine
    # the watch thread wakes late, so no figure close to 0.5 s)
    assert len(script.seen) == 1 and time.monotonic() - start < 10 * engine.timeout


def test_the_api_key_travels_as_a_bearer_header_read_from_the_named_variable(
    fake: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(events=completion_events("x"))
    monkeypatch.setenv("GP_UNIT_KEY", "s3cret")
    engine = RemoteEngine(url, model=CODER, api_key_env="GP_UNIT_KEY")

    engine.infill("a", "b")

    assert script.seen[-1].headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(vars(engine)) and "s3cret" not in repr(vars(engine._http))


def test_a_rejected_key_is_a_one_line_error_naming_the_variable(
    fake: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = fake
    script.route = lambda path, body: Reply(401, body={"detail": "Invalid API key"})
    monkeypatch.setenv("GP_UNIT_KEY", "wrong")
    engine = RemoteEngine(url, model=CODER, api_key_env="GP_UNIT_KEY")

    with pytest.raises(RemoteAuthError) as caught:
        engine.infill("a", "b")

    assert len(script.seen) == 1  # not retried
    assert (
        "\n" not in str(caught.value)
        and "GP_UNIT_KEY" in str(caught.value)
        and "wrong" not in str(caught.value)
    )


def test_an_unset_key_variable_is_a_config_error_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GP_UNIT_MISSING", raising=False)

    with pytest.raises(ConfigError, match="GP_UNIT_MISSING"):
        RemoteEngine("http://127.0.0.1:1", api_key_env="GP_UNIT_MISSING")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8080", "http://h:8080"),
        ("http://h:8080/v1/", "http://h:8080"),
        ("https://h/api/v1", "https://h:443/api"),
    ],
)
def test_base_urls_are_accepted_with_or_without_v1(url: str, expected: str) -> None:
    assert RemoteEngine(url).url == expected


def test_a_url_that_is_not_http_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        RemoteEngine("localhost:8080")


# --- FallbackEngine ----------------------------------------------------------------------------------------


class StubRemote:
    name = "remote-stub"
    fim = None
    url = "http://stub"
    timeout = 1.0

    def __init__(self) -> None:
        self.up = True
        self.probes = 0
        self.closed = False

    def infill(self, prefix: str, suffix: str, **kwargs: Any) -> Generation:
        if not self.up:
            raise RemoteError("the server at http://stub is not answering (connection refused)")
        cancel = kwargs.get("cancel")
        return Generation("", stop_reason="cancelled") if cancel and cancel.is_set() else Generation("remote")

    def chat(self, messages: list[ChatMessage], **kwargs: Any) -> Generation:
        return self.infill("", "", **kwargs)

    def count_tokens(self, text: str) -> int:
        return 1

    def probe(self, timeout: float = 2.0) -> float:
        self.probes += 1
        if not self.up:
            raise RemoteError("down")
        return 0.001

    def close(self) -> None:
        self.closed = True


class StubLocal:
    name = "local-stub"
    fim = None

    def infill(self, prefix: str, suffix: str, **kwargs: Any) -> Generation:
        return Generation("local")

    def chat(self, messages: list[ChatMessage], **kwargs: Any) -> Generation:
        return Generation("local")

    def count_tokens(self, text: str) -> int:
        return 2

    def close(self) -> None:
        pass


class Statuses(list[EngineStatus]):
    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def __call__(self, status: EngineStatus) -> None:
        with self.changed:
            self.append(status)
            self.changed.notify_all()

    def wait_for(self, state: str) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: any(s.state == state for s in self), 5.0), list(self)


def test_fallback_answers_while_the_server_is_down_and_switches_back_when_it_returns() -> None:
    remote, statuses = StubRemote(), Statuses()
    built: list[StubLocal] = []
    engine = FallbackEngine(
        remote, lambda: built.append(StubLocal()) or built[-1], statuses, probe_interval=0.01
    )
    try:
        assert (
            engine.infill("a", "b").text == "remote" and built == []
        )  # the local model loads only when needed
        remote.up = False
        assert engine.infill("a", "b").text == "local"
        assert engine.name == "local-stub" and engine.count_tokens("x") == 2
        assert [s.state for s in statuses] == ["fallback"] and "local model (local-stub)" in statuses[
            0
        ].message

        remote.up = True
        statuses.wait_for("remote")
        assert engine.chat([ChatMessage("user", "hi")]).text == "remote"
        assert len(built) == 1
    finally:
        engine.close()


def test_without_a_local_model_a_dead_server_is_one_clear_error_and_a_down_status() -> None:
    remote, statuses = StubRemote(), Statuses()
    remote.up = False

    def no_model() -> StubLocal:
        raise ModelNotInstalled("model 'fast' is not installed", "greenpatch model install fast")

    engine = FallbackEngine(remote, no_model, statuses, probe_interval=10)
    try:
        with pytest.raises(EngineUnavailable, match="no local model") as caught:
            engine.infill("a", "b")
        assert "\n" not in str(caught.value)
        assert caught.value.kind is ErrorKind.NOT_INSTALLED  # the editor offers to install a local model
        assert [s.state for s in statuses] == ["down"] and "is not installed" in statuses[0].message
    finally:
        engine.close()


def test_a_cancelled_remote_request_is_not_an_outage() -> None:
    remote, statuses = StubRemote(), Statuses()
    engine = FallbackEngine(remote, StubLocal, statuses)
    cancel = CancelToken()
    cancel.cancel()

    assert engine.infill("a", "b", cancel=cancel).stop_reason == "cancelled"
    assert engine.using_remote and list(statuses) == []
    engine.close()


def test_closing_stops_the_probe_and_closes_the_server_connection() -> None:
    remote = StubRemote()
    remote.up = False
    engine = FallbackEngine(remote, StubLocal, None, probe_interval=0.01, max_probe_interval=0.01)
    engine.infill("a", "b")
    prober = engine._prober

    engine.close()

    assert prober is not None and not prober.is_alive() and remote.closed
