"""The per-test limit seen from outside the test process.

The plugin raises a timeout inside a test that runs past its limit (a SIGALRM timer). A test that signal cannot
reach - stuck in C code, SIGALRM ignored or taken over, a hang in another thread the test joins - is ended here:
the watch follows the plugin's "begin"/"done" records as they are written and, once one test has run for its limit
plus a grace period, says so through the CancelToken interface the process watchdog polls (every 20 ms), which
kills the run. The verifier then records that test as timed out and starts the run again for the tests not yet run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol

POLL_SECONDS = 0.05  # how often the results file is looked at (the watchdog asks every 20 ms)


class _Token(Protocol):
    def is_set(self) -> bool: ...


def grace(limit: float) -> float:
    """Time given to the in-process timer before the run is killed from outside (the timeout has to unwind the
    test and run its teardown)."""
    return max(1.0, min(5.0, limit / 4))


class TestWatch:
    """Set when `cancel` is, or when a test has run longer than `limit` + grace(limit); then `overrun` names it."""

    __test__ = False  # not a pytest test class

    def __init__(self, cancel: _Token, results: Path, limit: float) -> None:
        self.cancel = cancel
        self.results = results
        self.limit = limit
        self.overrun = ""
        self._offset = 0
        self._partial = b""
        self._current = ""
        self._since = 0.0
        self._next = 0.0

    def is_set(self) -> bool:
        if self.cancel.is_set():
            return True
        if self.overrun:
            return True
        if self.limit <= 0:
            return False
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + POLL_SECONDS
        self._read(now)
        if self._current and now - self._since > self.limit + grace(self.limit):
            self.overrun = self._current
        return bool(self.overrun)

    def _read(self, now: float) -> None:
        try:
            with open(self.results, "rb") as f:
                if f.seek(0, 2) < self._offset:  # emptied: a warm run given up and started again cold
                    self._offset, self._partial, self._current = 0, b"", ""
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return
        if not data:
            return
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            event = record.get("event") if isinstance(record, dict) else None
            if event == "begin":
                self._current, self._since = str(record.get("nodeid")), now
            elif event == "done":
                self._current = ""
