"""One thread owns the engine: requests queue up, the model loads lazily on the first one, nothing blocks the loop.

Cancellation is cooperative: a job whose token is set before it starts is skipped; a running job's engine call
checks the token after every token it generates. `run()` is the asyncio face: cancelling the awaiting task sets
the token, so a superseded LSP request stops the model within a token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from greenpatch.cancel import CancelToken
from greenpatch.engine.base import Engine
from greenpatch.errors import Cancelled, GreenpatchError

log = logging.getLogger(__name__)

T = TypeVar("T")
StatusCallback = Callable[[str, str], None]  # (state: "loadingModel" | "ready" | "error", message)


class EngineWorker:
    def __init__(
        self, factory: Callable[[], Engine], on_status: StatusCallback | None = None, *, owns_engine: bool = True
    ) -> None:
        self._factory = factory
        self._owns_engine = owns_engine  # False: close() leaves the engine open (shared with other workers)
        self._on_status = on_status
        self._queue: queue.Queue[tuple[Callable[[Engine], Any], CancelToken | None, concurrent.futures.Future[Any]] | None]
        self._queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.engine: Engine | None = None
        self.state = "idle"
        self.message = ""
        self.error: BaseException | None = None

    # --- public ---------------------------------------------------------------------------------------------

    def submit(self, fn: Callable[[Engine], T], cancel: CancelToken | None = None) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                future.set_exception(Cancelled("the engine is shut down"))
                return future
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="greenpatch-engine", daemon=True)
                self._thread.start()
            self._queue.put((fn, cancel, future))
        return future

    async def run(self, fn: Callable[[Engine], T], cancel: CancelToken | None = None) -> T:
        token = cancel or CancelToken()
        future = self.submit(fn, token)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            token.cancel()
            raise

    def warm_up(self) -> concurrent.futures.Future[None]:
        """Load the model now (e.g. at server start) instead of on the first request."""
        return self.submit(lambda engine: None)

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    # --- the engine thread ----------------------------------------------------------------------------------

    def _status(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        if self._on_status is not None:
            try:
                self._on_status(state, message)
            except Exception:  # a broken callback must not kill the engine thread
                log.exception("engine status callback failed")

    def _ensure_engine(self) -> Engine:
        if self.engine is not None:
            return self.engine
        self._status("loadingModel", "loading the model")
        try:
            self.engine = self._factory()
        except BaseException as exc:
            first = self.error is None or str(self.error) != str(exc)
            self.error = exc
            if first:
                if not isinstance(exc, GreenpatchError):
                    log.exception("loading the model failed")
                self._status("error", str(exc))
            raise
        self.error = None
        self._status("ready", f"model {self.engine.name} ready")
        return self.engine

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                break
            fn, cancel, future = job
            if not future.set_running_or_notify_cancel():
                continue
            if cancel is not None and cancel.is_set():
                future.set_exception(Cancelled())
                continue
            try:
                engine = self._ensure_engine()
                future.set_result(fn(engine))
            except BaseException as exc:
                future.set_exception(exc)
        if self.engine is not None and self._owns_engine:
            try:
                self.engine.close()
            finally:
                self.engine = None
