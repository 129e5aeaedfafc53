"""Cooperative cancellation shared by the engine, verification and repair.

Whoever no longer wants a result sets a CancelToken; the work checks it (engines after every token, the test
watchdog every 20 ms, the repair run between steps) and ends. How the end is reported depends on the boundary
it crosses, one convention each:

- an engine call (`Engine.infill`, `chat`, the local engine's `infill_many`) returns
  `Generation(stop_reason="cancelled")` holding the text made so far (`score` returns [], as unscored).
  Engines never raise for a cancel: the check sits in the per-token loop, which then ends like any other stop
  (caches consistent, partial text kept, the same path as a time budget's "time").
- an engine worker job (`EngineWorker.submit`, `run`) that never ran (its token was set before it started, or
  the worker was closed or closing) raises `errors.Cancelled` from its future: there is no value to mark. A
  job that ran returns whatever its engine call returned. An awaiting asyncio task that is itself cancelled
  gets asyncio.CancelledError (asyncio's rule: re-raised, never swallowed).
- verification (`Verifier.run`, `baseline`, `run_many`, `verify.examples.run_examples`, `verify.process.run`)
  returns its result marked: `TestRun.cancelled` (its error is CANCELLED, so it never `passed`),
  `ExampleRun.cancelled`, `Outcome.cancelled`. It never raises for a cancel, and the process tree and the
  sandbox are gone when it returns: `run_many` hands back one result per candidate, and every caller already
  treats a run that did not pass.
- a repair run (`RepairPipeline.repair` and every step inside it) raises `errors.Cancelled`, checked after
  each engine or verification call: one raise unwinds the nested groups, rounds and batches. What was verified
  before it stays on `pipeline.report`; the CLI reports those fixes (exit 130), the server publishes nothing.
- a completion request (`CompletionService.complete`) returns None: no suggestion for a cancelled or
  superseded request, which the LSP handler answers as no items.
"""

from __future__ import annotations

import threading
import time

# The word a cancelled result carries (Generation.stop_reason, TestRun.error, ExampleRun.verdict).
CANCELLED = "cancelled"


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
