"""The engine worker's lifetime: close() stops the running job and joins the thread that owns the model, so nothing
frees llama.cpp (or exits the process) while a decode is running (that ended in SIGSEGV at the time limit)."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.engine.base import Engine, Generation
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import Cancelled


def _start_slow_job(worker: EngineWorker, engine: FakeEngine) -> concurrent.futures.Future[Generation]:
    started = threading.Event()
    token = CancelToken()

    def job(e: Engine) -> Generation:
        started.set()
        return e.infill("def f():\n    ", "", cancel=token)

    future = worker.submit(job, token)
    assert started.wait(10), "the job never started"
    return future


def test_closing_the_worker_stops_the_running_generation_and_joins_its_thread() -> None:
    engine = FakeEngine(delay=600)  # a generation that only a cancel ends
    worker = EngineWorker(lambda: engine)
    future = _start_slow_job(worker, engine)
    began = time.monotonic()
    assert worker.close(timeout=30), "the engine thread is still running"
    assert time.monotonic() - began < 10
    assert not worker.busy
    assert future.result(0).stop_reason == "cancelled"


def test_closing_the_worker_fails_the_jobs_still_queued_with_cancelled() -> None:
    engine = FakeEngine(delay=600)
    worker = EngineWorker(lambda: engine)
    _start_slow_job(worker, engine)
    ran: list[str] = []
    queued = worker.submit(lambda e: ran.append("queued job"), CancelToken())
    assert worker.close(timeout=30)
    with pytest.raises(Cancelled):
        queued.result(0)
    assert ran == []


def test_a_worker_that_never_ran_a_job_closes_at_once() -> None:
    assert EngineWorker(FakeEngine).close(timeout=0)
