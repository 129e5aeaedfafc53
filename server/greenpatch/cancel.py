"""Cooperative cancellation shared by the engine, verification and repair."""

from __future__ import annotations

import threading
import time


class CancelToken:
    """A flag set by whoever no longer wants the result; long loops check it (engines after every token)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        # time.monotonic() after which a generation should end at its next line end and return what it has
        # (a block suggestion on a time budget); None: no budget
        self.wind_down_at: float | None = None

    def cancel(self) -> None:
        self._event.set()

    def winding_down(self) -> bool:
        return self.wind_down_at is not None and time.monotonic() >= self.wind_down_at

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class LinkedToken(CancelToken):
    """Set when it is cancelled itself or when any parent is (the client's request, a newer document version,
    the whole repair)."""

    def __init__(self, *parents: CancelToken | None) -> None:
        super().__init__()
        self._parents = [p for p in parents if p is not None]

    def is_set(self) -> bool:
        return super().is_set() or any(p.is_set() for p in self._parents)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            super().wait(min(left, 0.01))
        return True
