"""One repair run's limits (its cancel token and its deadline, checked between every two pieces of work) and
where its time goes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from greenpatch.cancel import CancelToken
from greenpatch.engine.base import Generation
from greenpatch.errors import Cancelled
from greenpatch.repair.types import RepairReport


class TimeSpent:
    """Seconds by what they were spent on, measured as they pass. The run's thread adds what it waited for
    ("tests": the verifier; "model_wait": the model, with nothing else to do); the engine's thread adds what the
    model did ("prompt": evaluating prompts; "generation": the rest of its jobs), mostly while tests run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}
        self.tokens: dict[str, int] = {}

    def add(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.seconds[kind] = self.seconds.get(kind, 0.0) + max(0.0, seconds)

    @contextmanager
    def spending(self, kind: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(kind, time.perf_counter() - started)

    def model_job(self, started: float, generations: list[Generation], *, all_prompt: bool = False) -> None:
        """A model job that began at `started` (time.perf_counter()) is over: its time as prompt evaluation and
        generation (all prompt evaluation for a job that only reads the model's probabilities)."""
        busy = time.perf_counter() - started
        prompt = busy if all_prompt else min(busy, sum(g.prompt_seconds for g in generations))
        with self._lock:
            self.seconds["prompt"] = self.seconds.get("prompt", 0.0) + prompt
            self.seconds["generation"] = self.seconds.get("generation", 0.0) + busy - prompt
            for g in generations:
                self.tokens["prompt"] = self.tokens.get("prompt", 0) + g.prompt_tokens
                self.tokens["reused"] = self.tokens.get("reused", 0) + g.reused_tokens
                self.tokens["generated"] = self.tokens.get("generated", 0) + len(g.logprobs)

    def summary(self, wall: float) -> dict[str, float]:
        """The report's split of the run's `wall` seconds: tests and waiting for the model on the run's clock,
        "other" the rest of it (localizing, reading and parsing files, ranking); "prompt" and "generation" are
        the model's own time, which overlaps the tests'."""
        with self._lock:
            spent = dict(self.seconds)
        tests, wait = spent.get("tests", 0.0), spent.get("model_wait", 0.0)
        return {"tests": round(tests, 2), "model_wait": round(wait, 2), "prompt": round(spent.get("prompt", 0.0), 2),
                "generation": round(spent.get("generation", 0.0), 2),
                "other": round(max(0.0, wall - tests - wait), 2)}


class RunClock:
    def __init__(self, cancel: CancelToken, deadline: float, report: RepairReport) -> None:
        self.cancel = cancel
        self.deadline = deadline
        self._report = report
        self.spent = TimeSpent()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def time_up(self) -> bool:
        """The deadline has passed: the report says it was cut short (once)."""
        if not self.out_of_time():
            return False
        if not self._report.timed_out:
            self._report.timed_out = True
            self._report.notes.append("stopped at the time limit")
        return True
