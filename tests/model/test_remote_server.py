"""The remote engine against a real llama-cpp-python server on loopback, serving the tiny test model."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.config import settings_from
from greenpatch.doctor import check_remote
from greenpatch.engine.base import ChatMessage, Generation
from greenpatch.engine.fallback import EngineStatus, FallbackEngine
from greenpatch.engine.remote import RemoteAuthError, RemoteEngine
from greenpatch.errors import GreenpatchError

pytestmark = pytest.mark.model

LAUNCHER = Path(__file__).with_name("llama_server_launcher.py")
STARTUP_LIMIT = 60.0


def _tiny_model() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'greenpatch[llm]')")
    try:
        importlib.import_module("llama_cpp.server.app")
    except ImportError as exc:
        pytest.skip(f"llama_cpp.server cannot be imported ({exc}); pip install 'llama-cpp-python[server]'")
    from greenpatch.engine import models

    return models.ensure_model("tiny", progress=False)  # installed on first use, like tests/model/conftest.py


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """One `python -m llama_cpp.server` process (through the launcher) on a loopback port."""

    def __init__(self, model: Path, port: int, log: Path, api_key: str | None = None) -> None:
        self.model, self.port, self.log, self.api_key = model, port, log, api_key
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [
            sys.executable,
            str(LAUNCHER),
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            "2",
            "--n_ctx",
            "1024",
        ]
        if self.api_key:
            args += ["--api_key", self.api_key]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_LIMIT
        request = urllib.request.Request(f"{self.url}/v1/models")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"llama_cpp.server exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(request, timeout=1.0) as resp:
                    json.load(resp)
                    return
            except OSError:
                time.sleep(0.1)  # polling a port that has nothing to wait on
        self.stop()
        raise AssertionError(f"llama_cpp.server did not answer within {STARTUP_LIMIT:g} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    return _tiny_model()


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    srv = LlamaServer(tiny_model, _free_port(), tmp_path_factory.mktemp("llama-server") / "server.log")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def engine(server: LlamaServer) -> Iterator[RemoteEngine]:
    eng = RemoteEngine(server.url, timeout=90.0)
    yield eng
    eng.close()


def test_an_inline_completion_comes_from_the_server_with_log_probabilities(engine: RemoteEngine) -> None:
    generation = engine.infill("def add(a, b):\n    return", "\n", max_tokens=8, stop=["\n"])

    assert generation.text.strip()
    assert "\n" not in generation.text
    assert generation.logprobs and all(lp <= 0.0 for lp in generation.logprobs)
    assert generation.stop_reason in ("stop", "length")


def test_out_of_time_the_server_stream_ends_after_a_complete_line(engine: RemoteEngine) -> None:
    token = CancelToken()
    token.wind_down_at = 0.0
    generation = engine.infill("def count():\n    n = 0\n", "", max_tokens=40, cancel=token)
    text = generation.text
    assert generation.stop_reason == "time" and text.strip() and "\n" not in text.strip(), text


def test_a_repair_chat_round_trips_and_missing_log_probabilities_are_reported_once(
    engine: RemoteEngine, caplog: pytest.LogCaptureFixture
) -> None:
    messages = [ChatMessage("user", "Write a Python function that adds two numbers.")]
    with caplog.at_level("WARNING", logger="greenpatch.engine.remote"):
        first = engine.chat(messages, max_tokens=12, temperature=0.0)
        second = engine.chat(messages, max_tokens=12, temperature=0.0)

    assert first.text and first.text == second.text
    # llama-cpp-python streams chat chunks without log-probabilities: said once, not per request.
    assert first.logprobs == []
    assert sum("no log-probabilities" in r.message for r in caplog.records) == 1


def test_requests_reuse_one_keep_alive_connection(engine: RemoteEngine) -> None:
    engine.infill("x = ", "", max_tokens=2)
    idle = list(engine._http._idle)
    engine.infill("y = ", "", max_tokens=2)

    assert len(idle) == 1 and engine._http._idle == idle


def test_cancelling_mid_stream_returns_at_once_and_frees_the_server(engine: RemoteEngine) -> None:
    start = time.monotonic()
    engine.infill("x = ", "", max_tokens=2)
    short = time.monotonic() - start
    cancel, cancelled_at = CancelToken(), []
    timer = threading.Timer(0.5, lambda: (cancelled_at.append(time.monotonic()), cancel.cancel()))
    start = time.monotonic()
    timer.start()
    generation = engine.infill(
        "Once upon a time", "", max_tokens=400, cancel=cancel
    )  # many seconds uncancelled
    returned = time.monotonic()

    n = len(generation.logprobs)
    assert generation.stop_reason == "cancelled" and n < 400
    # No fixed figures (a busy machine is slower at everything): what the rest of the 400 tokens would take at the
    # pace the server wrote the first ones is what a missed cancel would cost.
    rest = (400 - n) * (returned - start) / max(n, 1)
    assert returned - cancelled_at[0] < rest / 2, "at once"
    # The server noticed the closed stream and stopped generating: a short request is served promptly.
    start = time.monotonic()
    assert engine.infill("x = ", "", max_tokens=2).stop_reason != "cancelled"
    assert time.monotonic() - start < short + rest / 2


class StatusLog:
    def __init__(self) -> None:
        self.statuses: list[EngineStatus] = []
        self._changed = threading.Condition()

    def __call__(self, status: EngineStatus) -> None:
        with self._changed:
            self.statuses.append(status)
            self._changed.notify_all()

    def wait_for(self, state: str, timeout: float) -> EngineStatus:
        with self._changed:
            ok = self._changed.wait_for(lambda: any(s.state == state for s in self.statuses), timeout)
        assert ok, f"no {state!r} status within {timeout:g} s: {self.statuses}"
        return next(s for s in self.statuses if s.state == state)


class LocalStub:
    """Stands in for the local model: answers instantly with a recognisable text."""

    name = "local-stub"
    fim = None

    def infill(self, prefix: str, suffix: str, **_: object) -> Generation:
        return Generation("  # from the local model")

    def chat(self, messages: list[ChatMessage], **_: object) -> Generation:
        return Generation("local chat")

    def count_tokens(self, text: str) -> int:
        return len(text)

    def close(self) -> None:
        pass


def test_killing_the_server_mid_request_falls_back_locally_and_recovers_when_it_returns(
    tiny_model: Path, tmp_path: Path
) -> None:
    srv = LlamaServer(tiny_model, _free_port(), tmp_path / "server.log")
    srv.start()
    statuses = StatusLog()
    remote = RemoteEngine(srv.url, timeout=90.0)
    engine = FallbackEngine(remote, LocalStub, statuses, probe_interval=0.2, max_probe_interval=0.5)
    try:
        assert (
            engine.infill("def add(a, b):\n    return", "\n", max_tokens=4).text != "  # from the local model"
        )

        killed_at: list[float] = []
        killer = threading.Timer(0.5, lambda: (srv.kill(), killed_at.append(time.monotonic())))
        killer.start()
        during = engine.infill("Once upon a time", "", max_tokens=400)
        killer.join()

        assert during.text == "  # from the local model"
        # from the kill (a busy machine runs the timer late), against the request's timeout it would have waited for
        assert time.monotonic() - killed_at[0] < remote.timeout / 2
        assert statuses.wait_for("fallback", 1.0).message.count("\n") == 0
        assert not engine.using_remote
        start = time.monotonic()
        assert engine.infill("x = ", "", max_tokens=2).text == "  # from the local model"
        assert time.monotonic() - start < 0.5  # no waiting on the dead server while it is down

        srv.start()
        back = statuses.wait_for("remote", 30.0)
        assert srv.url in back.message
        assert (
            engine.infill("def add(a, b):\n    return", "\n", max_tokens=4).text != "  # from the local model"
        )
        assert [s.state for s in statuses.statuses] == ["fallback", "remote"]
    finally:
        engine.close()
        srv.stop()


def test_a_wrong_api_key_is_one_clear_line_and_the_right_key_works(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = LlamaServer(tiny_model, _free_port(), tmp_path / "server.log", api_key="right-key-123")
    srv.start()
    try:
        monkeypatch.setenv("GP_TEST_REMOTE_KEY", "wrong-key-456")
        engine = RemoteEngine(srv.url, api_key_env="GP_TEST_REMOTE_KEY", timeout=90.0)
        with pytest.raises(RemoteAuthError) as caught:
            engine.infill("x = ", "", max_tokens=2)
        message = str(caught.value)
        assert isinstance(caught.value, GreenpatchError)
        assert "\n" not in message
        assert "rejected the API key" in message and "GP_TEST_REMOTE_KEY" in message
        assert "wrong-key-456" not in message and "right-key-123" not in message

        monkeypatch.setenv("GP_TEST_REMOTE_KEY", "right-key-123")
        assert engine.infill("x = ", "", max_tokens=2).stop_reason in ("stop", "length")
        engine.close()
    finally:
        srv.stop()


def test_doctor_reports_reachability_model_and_latency(server: LlamaServer) -> None:
    settings = settings_from({"engine": {"url": server.url + "/v1", "timeout": 90}})

    checks = check_remote(settings)

    assert all(ok for ok, _ in checks), checks
    text = "\n".join(line for _, line in checks)
    assert (
        "reachable" in text and "tiny completion took" in text and str(os.path.basename(server.model)) in text
    )


def test_doctor_says_when_the_server_is_down() -> None:
    settings = settings_from({"engine": {"url": f"http://127.0.0.1:{_free_port()}", "timeout": 2}})

    checks = check_remote(settings)

    assert checks == [(False, checks[0][1])]
    assert "connection refused" in checks[0][1]
