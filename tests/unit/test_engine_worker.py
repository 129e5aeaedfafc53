"""The engine worker: lazy load with status reports, one thread, errors and cancellation reach the caller."""

from __future__ import annotations

import asyncio

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.config import Settings
from greenpatch.engine import load_engine
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import Cancelled, ModelNotInstalled


def test_the_model_loads_on_the_first_request_and_reports_its_status() -> None:
    states: list[str] = []
    worker = EngineWorker(FakeEngine, on_status=lambda state, message: states.append(state))
    assert states == []
    try:
        assert worker.submit(lambda engine: engine.name).result(5) == "fake"
        assert worker.submit(lambda engine: engine.name).result(5) == "fake"
    finally:
        worker.close()
    assert states == ["loadingModel", "ready"]


def test_a_load_failure_reaches_the_caller_and_is_reported_once(tmp_path) -> None:
    states: list[tuple[str, str]] = []
    settings = Settings()
    settings.model.cache_dir = str(tmp_path)
    worker = EngineWorker(lambda: load_engine("tiny", settings), on_status=lambda s, m: states.append((s, m)))
    try:
        for _ in range(2):
            with pytest.raises(ModelNotInstalled, match="greenpatch model install tiny"):
                worker.submit(lambda engine: None).result(5)
    finally:
        worker.close()
    assert [s for s, _ in states].count("error") == 1


def test_a_job_cancelled_before_it_starts_is_skipped() -> None:
    worker = EngineWorker(FakeEngine)
    token = CancelToken()
    token.cancel()
    try:
        with pytest.raises(Cancelled):
            worker.submit(lambda engine: "ran", token).result(5)
    finally:
        worker.close()


async def test_cancelling_the_awaiting_task_sets_the_token() -> None:
    engine = FakeEngine(delay=5)
    worker = EngineWorker(lambda: engine)
    token = CancelToken()
    try:
        task = asyncio.ensure_future(worker.run(lambda e: e.infill("x", "", cancel=token), token))
        while not engine.calls:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert token.is_set()
    finally:
        worker.close()


def test_the_fake_engine_is_chosen_by_name() -> None:
    assert load_engine("fake", Settings()).name == "fake"
