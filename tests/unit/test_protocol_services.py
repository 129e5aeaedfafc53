"""The services the server's features share: shutdown stops the users of a model before the model, and one close
that fails does not keep the others open."""

from __future__ import annotations

import logging

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.worker import EngineWorker
from greenpatch.protocol.services import RepairState, Services


def loaded_worker() -> EngineWorker:
    worker = EngineWorker(FakeEngine)
    worker.warm_up().result(timeout=30)
    return worker


def test_closing_cancels_the_running_repairs_and_stops_every_engine_worker() -> None:
    running = CancelToken()
    worker = loaded_worker()
    services = Services(
        repairs={"file:///shop/pricing.py": RepairState(cancel=running)},
        completion=CompletionService(worker, CompletionSettings()),
        engines={"fake": worker},
    )
    services.close()
    assert running.is_set()
    assert not worker.busy and worker.engine is None  # its thread ended and freed the engine
    assert services == Services()  # the next use builds them again


def test_a_close_that_fails_is_logged_and_the_engines_still_close(caplog: pytest.LogCaptureFixture) -> None:
    class StuckVerifier:
        def close(self) -> None:
            raise RuntimeError("sandbox busy")

    worker = loaded_worker()
    services = Services(verifier=StuckVerifier(), engines={"fake": worker})  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        services.close()
    assert not worker.busy
    assert "sandbox busy" in caplog.text
