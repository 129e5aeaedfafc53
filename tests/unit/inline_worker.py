"""An EngineWorker stand-in for pipeline tests: each model job runs on the calling thread, so the order is fixed."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from greenpatch.cancel import CancelToken


class InlineWorker:
    """Runs engine jobs on the calling thread: the EngineWorker interface without a thread."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def submit(self, fn: Callable[[Any], Any], cancel: CancelToken | None = None) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(self.engine))
        except BaseException as exc:  # noqa: BLE001 - the future carries it to the caller
            future.set_exception(exc)
        return future
