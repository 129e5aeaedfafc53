"""One thread owns the engine: requests queue up, the model loads lazily on the first one, nothing blocks the loop.

Cancellation is cooperative: a job whose token is set before it starts is skipped; a running job's engine call
checks the token after every token it generates. `run()` is the asyncio face: cancelling the awaiting task sets
the token, so a superseded LSP request stops the model within a token.

Lifetime: llama.cpp must never be torn down while this thread is inside it. The process's exit (C `exit()` runs
ggml's static destructors) or a free of the model under a running decode ends in SIGSEGV. So `close()` cancels the
queued jobs, sets the running job's token and joins the thread, which frees the engine itself; at interpreter exit
every worker still open is closed the same way (`_close_all`, an atexit handler: it runs before finalization, while
the thread can still finish), and a thread that cannot be joined makes the process leave with `os._exit`, skipping
the destructors, instead of crashing.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from greenpatch.cancel import CancelToken
from greenpatch.engine.base import Engine
from greenpatch.errors import Cancelled, GreenpatchError

log = logging.getLogger(__name__)

T = TypeVar("T")
StatusCallback = Callable[[str, str], None]  # (state: "loadingModel" | "ready" | "error", message)

# How long close() waits for the running job by default: a cancelled decode stops within a token or a prompt step
# (~1 s of the default model on 2 cores); loading a model cannot be interrupted and takes longer.
CLOSE_TIMEOUT = 60.0
EXIT_STUCK = 70  # os._exit status when an engine thread could not be stopped at exit (EX_SOFTWARE)

_open_workers: weakref.WeakSet[EngineWorker] = weakref.WeakSet()


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
        self._current: CancelToken | None = None  # the running job's token: close() sets it
        self._idle: set[CancelToken] = set()  # tokens of idle jobs queued or running: any other job sets them
        self.engine: Engine | None = None
        self.state = "idle"
        self.message = ""
        self.error: BaseException | None = None

    # --- public ---------------------------------------------------------------------------------------------

    def submit(self, fn: Callable[[Engine], T], cancel: CancelToken | None = None, *,
               idle: bool = False) -> concurrent.futures.Future[T]:
        """Queue `fn`. An `idle` job is work ahead (see completion/ahead.py): any job queued after it cancels it, so
        a request waits at most for the step it is in (its engine call checks its token between steps)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if idle and cancel is None:
            cancel = CancelToken()
        with self._lock:
            if self._closed:
                future.set_exception(Cancelled("the engine is shut down"))
                return future
            if idle:
                assert cancel is not None
                self._idle.add(cancel)
                token = cancel
                future.add_done_callback(lambda _: self._forget_idle(token))
            else:
                for token in self._idle:
                    token.cancel()
                self._idle.clear()
            if self._thread is None:
                # A daemon thread so that a forgotten worker cannot hang the exit; _close_all joins it first.
                self._thread = threading.Thread(target=self._loop, name="greenpatch-engine", daemon=True)
                self._thread.start()
                _open_workers.add(self)
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

    async def run_idle(self, fn: Callable[[Engine], T], cancel: CancelToken) -> T:
        """`run` for work ahead: the next job of any other kind cancels it (see `submit`)."""
        future = self.submit(fn, cancel, idle=True)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.cancel()
            raise

    def _forget_idle(self, token: CancelToken) -> None:
        with self._lock:
            self._idle.discard(token)

    def warm_up(self) -> concurrent.futures.Future[None]:
        """Load the model now (e.g. at server start) instead of on the first request."""
        return self.submit(lambda engine: None)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Stop the worker: queued jobs are cancelled, the running one's token is set, and the thread is joined
        (it frees the engine). True when the thread has ended; False when it is still inside the engine after
        `timeout`: then nothing may free the model or exit normally (see `exit_now`)."""
        with self._lock:
            self._closed = True
            thread = self._thread
            current = self._current
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            # the caller gets errors.Cancelled, as for any job that never ran (cancel.py); a future its caller
            # cancelled already is left as it is
            if job is not None and job[2].set_running_or_notify_cancel():
                job[2].set_exception(Cancelled("the engine is shut down"))
        if current is not None:
            current.cancel()
        if thread is None:
            return True
        self._queue.put(None)
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    @property
    def busy(self) -> bool:
        """The engine thread is still running (inside a job, or not yet closed)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

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
            with self._lock:  # with close(): a job either sees the worker closed or has its token set by it
                skip = self._closed or (cancel is not None and cancel.is_set())
                if not skip:
                    self._current = cancel
            if skip:
                future.set_exception(Cancelled())
                continue
            try:
                engine = self._ensure_engine()
                future.set_result(fn(engine))
            except BaseException as exc:  # noqa: BLE001 - the job failed: its caller gets the exception
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._current = None
        if self.engine is not None and self._owns_engine:
            try:
                self.engine.close()
            finally:
                self.engine = None


def exit_now(code: int) -> None:
    """Leave the process at once with `code` when an engine thread is still inside llama.cpp: stdio is flushed,
    and C's exit handlers (which free ggml's state under the running thread) are skipped."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


@atexit.register
def _close_all() -> None:
    stuck = [worker for worker in list(_open_workers) if not worker.close()]
    if stuck:
        log.error("the model did not stop within %.0f s; leaving without freeing it", CLOSE_TIMEOUT)
        exit_now(EXIT_STUCK)
