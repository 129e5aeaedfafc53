"""Cooperative cancellation shared by the engine, verification and repair."""

from __future__ import annotations

import threading


class CancelToken:
    """A flag set by whoever no longer wants the result; long loops check it (engines after every token)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)
