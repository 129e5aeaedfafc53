"""HTTP for the remote engine: keep-alive connections to one server, bounded retries, server-sent event streams.

Every generation is streamed so that a cancelled request is closed at once: a small watcher thread shuts the
socket down when the CancelToken fires or the deadline passes, which unblocks the reading thread and tells the
server to stop. Only the standard library is used (http.client keeps one connection alive per in-flight request
and reuses it). The API key is read from the environment variable named in `engine.apiKeyEnv` on every request;
it is never stored here, in settings files or in logs.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from greenpatch.cancel import CancelToken
from greenpatch.errors import ConfigError, EngineUnavailable

RETRY_STATUS = {429, 502, 503, 504}
CONNECT_TIMEOUT = 5.0  # a blackholed host must not eat the whole request timeout
CANCEL_POLL = 0.02  # how often the watcher looks at the CancelToken (CancelToken has no callback)


class RemoteError(EngineUnavailable):
    """The server could not be reached, failed, or answered something unusable."""

    def __init__(
        self, message: str, hint: str | None = None, *, http_status: int | None = None, empty_stream: bool = False
    ) -> None:
        super().__init__(message, hint)
        self.http_status = http_status  # None: no HTTP answer (not reachable, dropped)
        self.empty_stream = empty_stream  # the response ended before its first event


class RemoteAuthError(ConfigError):
    """The server rejected the API key (or wants one and none was sent)."""


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


class HttpClient:
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
                        f"the server at {self.target} answered {failure} to {path}", http_status=resp.status
                    )
            attempt += 1
            backoff = 0.1 * 2 ** (attempt - 1) * (1 + random.random() / 2)
            if attempt > self.retries or time.monotonic() + backoff >= deadline:
                raise RemoteError(
                    f"the server at {self.target} is not answering ({failure})",
                    "check that it is running; greenpatch retries automatically",
                    http_status=status,
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
    ) -> Iterator[EventStream]:
        """POST with stream=true; yields an iterator of parsed events that ends early on cancel or deadline."""
        watch = _Watch(cancel, time.monotonic() + (timeout or self.timeout))
        try:
            try:
                conn, resp = self._open(
                    "POST", path, body, streaming=True, deadline=watch.deadline, watch=watch
                )
            except _Stopped:
                yield EventStream(None, watch, str(self.target))
                return
            events = EventStream(resp, watch, str(self.target))
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


class EventStream:
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
