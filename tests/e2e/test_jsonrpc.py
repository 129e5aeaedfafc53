"""Every JSON-RPC request gets a response, as the protocol says, whatever the client sends: a raw client writes
Content-Length framed bytes to the real `greenpatch serve` and reads what comes back."""

from __future__ import annotations

import json
import queue
import random
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import SERVER

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
SERVER_NOT_INITIALIZED = -32002
TIMEOUT = 20


class RawClient:
    """The server as a subprocess, spoken to in bytes. Messages the server sends are read on a thread into a queue,
    so a test awaits the one it wants instead of sleeping."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        while True:
            length = None
            while (header := stdout.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if header == b"" or length is None:
                return
            self.received.put(json.loads(stdout.read(length)))

    def send_bytes(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps({"jsonrpc": "2.0", **message}).encode())

    def response(self, msg_id: Any) -> dict[str, Any]:
        """The server's response to `msg_id` (None: a response to a message whose id could not be read)."""
        for message in self.seen:
            if "method" not in message and message.get("id", "missing") == msg_id:
                self.seen.remove(message)
                return message
        while True:
            message = self.received.get(timeout=TIMEOUT)
            if "method" not in message and message.get("id", "missing") == msg_id:
                return message
            self.seen.append(message)

    def request(self, msg_id: int, method: str, params: Any = None) -> dict[str, Any]:
        self.send({"id": msg_id, "method": method, **({} if params is None else {"params": params})})
        return self.response(msg_id)

    def notifications(self, method: str) -> list[dict[str, Any]]:
        while not self.received.empty():
            self.seen.append(self.received.get_nowait())
        return [m for m in self.seen if m.get("method") == method]

    def initialize(self, root: Path, msg_id: int = 1) -> None:
        result = self.request(msg_id, "initialize", {
            "processId": None, "rootUri": root.as_uri(), "capabilities": {},
            "initializationOptions": {"model": {"completion": "fake", "repair": "fake"}},
        })
        assert "capabilities" in result["result"]
        self.send({"method": "initialized", "params": {}})

    def exit_code(self) -> int:
        return self.proc.wait(timeout=TIMEOUT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawClient]:
    client = RawClient(tmp_path / "server.log")
    yield client
    client.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    return root


def error_code(response: dict[str, Any]) -> int | None:
    return response.get("error", {}).get("code")


def inline_params(uri: str, line: int = 0, trigger_kind: int = 1) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": 0},
            "context": {"triggerKind": trigger_kind}}


def test_a_request_before_initialize_is_refused_as_not_initialized(raw: RawClient, workspace: Path) -> None:
    response = raw.request(1, "workspace/symbol", {"query": "add"})
    assert error_code(response) == SERVER_NOT_INITIALIZED
    raw.initialize(workspace, msg_id=2)
    assert "result" in raw.request(3, "workspace/symbol", {"query": "add"})


def test_requests_with_params_that_fail_validation_get_invalid_params(raw: RawClient, workspace: Path) -> None:
    raw.initialize(workspace)
    uri = (workspace / "calc.py").as_uri()
    assert error_code(raw.request(2, "textDocument/documentSymbol")) == INVALID_PARAMS  # missing params
    assert error_code(raw.request(3, "textDocument/inlineCompletion", inline_params(uri, line=-1))) == INVALID_PARAMS
    assert error_code(raw.request(4, "textDocument/inlineCompletion", inline_params(uri, trigger_kind=7))) == (
        INVALID_PARAMS
    )
    assert error_code(raw.request("five", "textDocument/documentSymbol", {"textDocument": []})) == INVALID_PARAMS
    # the server goes on answering, and told the user nothing: the client got its answers
    assert "result" in raw.request(6, "workspace/symbol", {"query": "add"})
    assert raw.notifications("window/showMessage") == []


def test_bytes_that_are_not_json_get_a_parse_error(raw: RawClient, workspace: Path) -> None:
    raw.initialize(workspace)
    raw.send_bytes(b'{"jsonrpc": "2.0", "id": 2, "method": ')
    assert error_code(raw.response(None)) == PARSE_ERROR
    raw.send_bytes(b'\xff\xfe{"jsonrpc"}')
    assert error_code(raw.response(None)) == PARSE_ERROR
    assert "result" in raw.request(3, "workspace/symbol", {"query": "add"})
    assert raw.notifications("window/showMessage") == []


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b'{"id": 7, "method": "workspace/symbol"}',
                                  b'{"jsonrpc": "2.0", "id": [1], "method": "workspace/symbol"}'])
def test_json_that_is_not_a_message_is_an_invalid_request(raw: RawClient, workspace: Path, body: bytes) -> None:
    raw.initialize(workspace)
    raw.send_bytes(body)
    expected_id = 7 if b'"id": 7' in body else None
    assert error_code(raw.response(expected_id)) == INVALID_REQUEST
    assert "result" in raw.request(3, "workspace/symbol", {"query": "add"})


def test_a_notification_method_sent_as_a_request_is_answered_as_not_found(raw: RawClient, workspace: Path) -> None:
    raw.initialize(workspace)
    params = {"textDocument": {"uri": (workspace / "calc.py").as_uri()}}
    assert error_code(raw.request(2, "textDocument/didSave", params)) == METHOD_NOT_FOUND


def test_a_second_initialize_is_an_invalid_request(raw: RawClient, workspace: Path) -> None:
    raw.initialize(workspace)
    response = raw.request(2, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert error_code(response) == INVALID_REQUEST


def test_requests_after_shutdown_are_invalid_and_exit_then_ends_the_server_with_0(
    raw: RawClient, workspace: Path
) -> None:
    raw.initialize(workspace)
    assert raw.request(2, "shutdown") == {"jsonrpc": "2.0", "id": 2, "result": None}
    assert error_code(raw.request(3, "workspace/symbol", {"query": "add"})) == INVALID_REQUEST
    raw.send({"method": "exit"})
    assert raw.exit_code() == 0


def test_exit_without_shutdown_ends_the_server_with_1(raw: RawClient, workspace: Path) -> None:
    raw.initialize(workspace)
    raw.send({"method": "exit"})
    assert raw.exit_code() == 1


def test_a_notification_with_bad_params_is_logged_not_shown(raw: RawClient, workspace: Path) -> None:
    raw.initialize(workspace)
    raw.send({"method": "textDocument/didOpen", "params": {"textDocument": {"uri": 5}}})
    raw.send({"method": "textDocument/didChange", "params": {
        "textDocument": {"uri": (workspace / "calc.py").as_uri(), "version": 2},
        "contentChanges": [{"range": {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}},
                            "text": "x"}]}})
    assert "result" in raw.request(2, "workspace/symbol", {"query": "add"})
    assert raw.notifications("window/showMessage") == []


def test_a_handler_that_fails_on_each_notification_pops_up_once_and_logs_each_time(
    raw: RawClient, workspace: Path
) -> None:
    raw.initialize(workspace)
    uri = (workspace / "calc.py").as_uri()
    raw.send({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}}})
    for version in (2, 3, 4):  # a lone surrogate cannot be encoded: the didChange handler raises
        raw.send_bytes(json.dumps({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                                "text": "\ud800"}]}}).encode())
    assert "result" in raw.request(2, "workspace/symbol", {"query": "x"})
    assert len(raw.notifications("window/showMessage")) == 1
    logged = [m for m in raw.notifications("window/logMessage") if "UnicodeEncodeError" in m["params"]["message"]]
    assert len(logged) == 3


JUNK = [None, -1, 2**40, "x", [], {}, True, 1.5, {"a": [1]}]


def mutated(value: Any, rng: random.Random) -> Any:
    """`value` with one field somewhere removed or replaced by junk."""
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        value = dict(value)
        roll = rng.random()
        if roll < 0.3:
            del value[key]
        elif roll < 0.6:
            value[key] = rng.choice(JUNK)
        else:
            value[key] = mutated(value[key], rng)
        return value
    return rng.choice(JUNK)


def test_every_one_of_500_mutated_requests_gets_a_response_and_nothing_pops_up(
    raw: RawClient, workspace: Path
) -> None:
    raw.initialize(workspace)
    uri = (workspace / "calc.py").as_uri()
    raw.send({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": "def add(a, b):\n    return a + b\n"}}})
    whole = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}
    requests = [
        ("textDocument/inlineCompletion", inline_params(uri, line=1)),
        ("textDocument/documentSymbol", {"textDocument": {"uri": uri}}),
        ("workspace/symbol", {"query": "add"}),
        ("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": whole, "context": {"diagnostics": []}}),
    ]
    rng = random.Random(7)
    for msg_id in range(10, 510):
        method, params = rng.choice(requests)
        raw.send({"id": msg_id, "method": method, "params": mutated(params, rng)})
    codes = {error_code(raw.response(msg_id)) for msg_id in range(10, 510)}
    assert codes <= {None, INVALID_PARAMS}
    assert raw.notifications("window/showMessage") == []
