"""The model in a supervised child process: a native crash inside llama.cpp (SIGSEGV, a GGML_ASSERT abort) ends
the child, not the language server.

`ChildEngine` is an Engine whose calls go over a pipe to a process that owns the real engine (`load_engine`). A
call's cancel token stays in the parent: while it waits, the parent forwards a cancel, and the child sets its own
token, so the model stops within a token as it does in-process. When the child dies, the call in flight fails with
EngineCrashed, `on_status` says so (the server's status bar), and the next call starts a fresh child.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from greenpatch import errors
from greenpatch.cancel import CancelToken
from greenpatch.config import Settings
from greenpatch.engine.base import ChatMessage, EngineBase, FimFormat, Generation
from greenpatch.errors import EngineCrashed, EngineUnavailable, GreenpatchError, ModelError

log = logging.getLogger(__name__)

POLL = 0.02  # seconds between looks at the caller's cancel token while a call runs in the child
START_TIMEOUT = 600.0  # loading a big model from a cold disk


class ChildEngine(EngineBase):
    """An Engine run by `load_engine(name_or_path, settings)` in a child process (spawned: no state of the server's
    threads is inherited)."""

    def __init__(
        self, name_or_path: str, settings: Settings, on_status: Callable[[str, str], None] | None = None
    ) -> None:
        self._target = (name_or_path, settings)
        self._on_status = on_status  # ("error", why) on a crash, ("ready", ...) once a new child serves
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.name = name_or_path
        self.fim: FimFormat | None = None
        self.crashes = 0
        self._closed = False
        self._start()  # a load failure reaches the caller now, as it does in-process

    # --- the Engine interface -------------------------------------------------------------------------------

    def infill(self, prefix: str, suffix: str, **kwargs: Any) -> Generation:
        return self._call("infill", (prefix, suffix), kwargs)  # type: ignore[no-any-return]

    def infill_many(self, prefix: str, suffix: str, seeds: Sequence[int], **kwargs: Any) -> list[Generation]:
        return self._call("infill_many", (prefix, suffix, list(seeds)), kwargs)  # type: ignore[no-any-return]

    def prepare(self, prefix: str, suffix: str, **kwargs: Any) -> int:
        return self._call("prepare", (prefix, suffix), kwargs)  # type: ignore[no-any-return]

    def pending(self, prefix: str, suffix: str, **kwargs: Any) -> int:
        return self._call("pending", (prefix, suffix), kwargs)  # type: ignore[no-any-return]

    def score(self, prefix: str, suffix: str, middle: str, **kwargs: Any) -> list[float]:
        return self._call("score", (prefix, suffix, middle), kwargs)  # type: ignore[no-any-return]

    def chat(self, messages: list[ChatMessage], **kwargs: Any) -> Generation:
        return self._call("chat", (messages,), kwargs)  # type: ignore[no-any-return]

    def count_tokens(self, text: str) -> int:
        return self._call("count_tokens", (text,), {})  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    # --- the parent side ------------------------------------------------------------------------------------

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=_child_main, args=(theirs, *self._target), name="greenpatch-model",
                                  daemon=True)
        process.start()
        theirs.close()
        if not ours.poll(START_TIMEOUT):
            process.kill()
            raise ModelError("the model process did not start", "see the server log")
        try:
            kind, value = ours.recv()
        except EOFError:
            process.join(5)
            raise EngineCrashed(f"the model process ended while loading the model ({_how(process.exitcode)})",
                                "see the server log") from None
        if kind == "raise":
            process.join(5)
            raise _rebuilt(value)
        self._process, self._conn = process, ours
        self.name, self.fim = value["name"], value["fim"]

    def _stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None or conn is None:
            return
        try:
            conn.send(("close",))
        except OSError:
            pass
        process.join(30)  # the child cancels its call, joins its thread and frees the model itself
        if process.is_alive():
            process.kill()
            process.join(5)
        conn.close()

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cancel: CancelToken | None = kwargs.pop("cancel", None)
        with self._lock:
            if self._process is None:
                if self._closed:
                    raise EngineUnavailable("the model is shut down")
                self._start()
                if self._on_status is not None:
                    self._on_status("ready", f"model {self.name} restarted after a crash")
            assert self._conn is not None
            conn = self._conn
            try:
                conn.send(("call", method, args, kwargs, cancel is not None,
                           getattr(cancel, "wind_down_at", None)))
                cancel_sent = False
                while True:
                    if conn.poll(POLL):
                        kind, value = conn.recv()
                        break
                    if self._process is not None and not self._process.is_alive():
                        raise EOFError
                    if cancel is not None and not cancel_sent and cancel.is_set():
                        conn.send(("cancel",))
                        cancel_sent = True
            except (EOFError, OSError):
                raise self._crashed() from None
        if kind == "raise":
            raise _rebuilt(value)
        return value

    def _crashed(self) -> EngineCrashed:
        process = self._process
        self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        code = None
        if process is not None:
            process.join(5)
            code = process.exitcode
        self.crashes += 1
        message = f"the model process crashed ({_how(code)}); greenpatch starts a new one on the next request"
        log.error(message)
        if self._on_status is not None:
            self._on_status("error", message)
        return EngineCrashed(message, "see the server log")


def _how(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _portable(exc: BaseException) -> tuple[str, str, str | None]:
    """An error as data the parent rebuilds (exceptions with their own __init__ do not unpickle as they were)."""
    if isinstance(exc, GreenpatchError):
        return type(exc).__name__, exc.message, exc.hint
    return "ModelError", f"the model failed: {exc!r}", None


def _rebuilt(data: tuple[str, str, str | None]) -> GreenpatchError:
    name, message, hint = data
    kind = getattr(errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, GreenpatchError)):
        kind = ModelError
    exc = kind.__new__(kind)
    GreenpatchError.__init__(exc, message, hint)
    return exc


# --- the child side -------------------------------------------------------------------------------------------


def _child_main(conn: Connection, name_or_path: str, settings: Settings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when the model stops
    os.dup2(2, 1)  # the server's stdout is the protocol: nothing from here may reach it
    from greenpatch.engine.loader import load_engine

    try:
        engine = load_engine(name_or_path, settings)
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        conn.send(("raise", _portable(exc)))
        return
    conn.send(("ready", {"name": engine.name, "fim": engine.fim}))
    calls: queue.Queue[tuple[str, tuple[Any, ...], dict[str, Any]] | None] = queue.Queue()
    current = CancelToken()

    def work() -> None:
        while (item := calls.get()) is not None:
            method, args, kwargs = item
            try:
                answer: tuple[str, Any] = ("result", getattr(engine, method)(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - the parent raises it
                answer = ("raise", _portable(exc))
            conn.send(answer)

    # Calls run on a thread so that this one keeps reading the pipe: a cancel must reach a running generation.
    thread = threading.Thread(target=work, name="greenpatch-model-calls")
    thread.start()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the server is gone
            if message[0] == "call":
                _, method, args, kwargs, cancellable, wind_down_at = message
                current = CancelToken()
                current.wind_down_at = wind_down_at
                calls.put((method, args, {**kwargs, "cancel": current} if cancellable else kwargs))
            elif message[0] == "cancel":
                current.cancel()
            else:
                break
    finally:
        current.cancel()
        calls.put(None)
        thread.join()
        engine.close()
