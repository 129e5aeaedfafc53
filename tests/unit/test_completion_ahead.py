"""Work ahead (completion/ahead.py) with the fake engine: which places are prepared, and that requests preempt it."""

from __future__ import annotations

import asyncio
import ctypes
import time
from pathlib import Path

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.context.builder import split_at
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.parking import ParkedPrompts
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import Cancelled

URI = "file:///work/calc.py"
PATH = Path("/work/calc.py")
DOC = "def add(a, b):\n    return a +\n\n\ndef sub(a, b):\n    return a -\n"
# a finished line (`total = a + b`), and the same with Enter pressed at its end
FINISHED = "def add(a, b):\n    total = a + b\n\n\ndef sub(a, b):\n    return a -\n"
ENTERED = FINISHED.replace("a + b\n", "a + b\n    \n", 1)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def service(engine: FakeEngine):
    worker = EngineWorker(lambda: engine)
    yield CompletionService(worker, CompletionSettings(debounce_ms=0))
    worker.close()


async def _started(engine: FakeEngine) -> None:
    assert await asyncio.to_thread(engine.preparing.wait, 5), "the preparation never started"


async def test_a_resting_cursor_has_its_prompt_prepared_to_the_end(service: CompletionService,
                                                                   engine: FakeEngine) -> None:
    engine.prepare_seconds = 0.05
    service.prepare_at(URI, PATH, DOC, 1, 1, 14, "cursor")
    await service.ahead.wait()
    assert engine.prepared and engine.prepared[-1][0].endswith("return a +") and engine.prepared[-1][2]
    assert service.ahead.counts["prepared"] == 1 and service.ahead.by_reason["cursor"] == 1


async def test_the_request_at_a_prepared_place_builds_the_prompt_that_was_prepared(
    service: CompletionService, engine: FakeEngine
) -> None:
    service.prepare_at(URI, PATH, DOC, 1, 1, 14, "cursor")
    await service.ahead.wait()
    await service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken())
    prepared_prefix, prepared_suffix, _ = engine.prepared[-1]
    assert (engine.calls[0]["prefix"], engine.calls[0]["suffix"]) == (prepared_prefix, prepared_suffix)


async def test_a_request_preempts_the_preparation_within_a_step(service: CompletionService,
                                                                engine: FakeEngine) -> None:
    engine.prepare_seconds = 30.0
    service.prepare_at(URI, PATH, DOC, 5, 1, 14, "cursor")
    await _started(engine)
    started = time.perf_counter()
    suggestion = await service.complete(URI, PATH, DOC, 5, 1, 14, CancelToken())
    assert time.perf_counter() - started < 2.0, "the request waited for the whole preparation"
    assert suggestion is not None and suggestion.text == " b"
    engine.prepare_seconds = 0.0  # the next line, prepared after the suggestion was shown
    await service.ahead.wait()
    assert engine.prepared[0][2] is False and service.ahead.counts["preempted"] == 1


async def test_a_newer_place_replaces_the_one_being_prepared(service: CompletionService, engine: FakeEngine) -> None:
    engine.prepare_seconds = 30.0
    service.prepare_at(URI, PATH, DOC, 1, 1, 14, "cursor")
    await _started(engine)
    engine.prepare_seconds = 0.0
    service.prepare_at(URI, PATH, DOC, 1, 5, 14, "cursor")
    await service.ahead.wait()
    assert [done for _, _, done in engine.prepared] == [False, True]
    assert engine.prepared[-1][0].endswith("return a -")


async def test_typing_on_the_same_line_prepares_nothing_more(service: CompletionService, engine: FakeEngine) -> None:
    service.prepare_at(URI, PATH, DOC, 1, 1, 14, "edit")
    await service.ahead.wait()
    service.prepare_at(URI, PATH, DOC.replace("a +", "a + "), 2, 1, 15, "edit")
    await service.ahead.wait()
    assert len(engine.prepared) == 1, "the second edit is on the line already prepared"
    service.prepare_at(URI, PATH, DOC, 3, 5, 14, "edit")
    await service.ahead.wait()
    assert len(engine.prepared) == 2, "an edit at a new line is a new place"


async def test_the_same_place_is_not_prepared_twice(service: CompletionService, engine: FakeEngine) -> None:
    service.prepare_at(URI, PATH, DOC, 1, 1, 14, "cursor")
    await service.ahead.wait()
    service.prepare_at(URI, PATH, DOC, 1, 1, 14, "cursor")
    await service.ahead.wait()
    assert len(engine.prepared) == 1


async def test_a_shown_line_suggestion_prepares_the_line_after_it(service: CompletionService,
                                                                  engine: FakeEngine) -> None:
    doc = "def add(a, b):\n    return a +\n"
    shown = await service.complete(URI, PATH, doc, 1, 1, 14, CancelToken())
    assert shown is not None and shown.shown
    await service.ahead.wait()
    assert service.ahead.by_reason["next line"] == 1
    assert engine.prepared[-1][0].endswith("return a + b\n"), "prepared as it will be after Enter"


async def test_preparing_ahead_can_be_turned_off(engine: FakeEngine) -> None:
    worker = EngineWorker(lambda: engine)
    try:
        service = CompletionService(worker, CompletionSettings(debounce_ms=0, prepare_ahead=False))
        service.prepare_at(URI, PATH, DOC, 1, 1, 14, "cursor")
        await service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken())
        await service.ahead.wait()
        assert engine.prepared == []
    finally:
        worker.close()


async def test_the_editor_is_told_when_a_place_is_being_prepared(service: CompletionService) -> None:
    seen: list[tuple[int, bool]] = []
    service.on_preparing(lambda place, busy: seen.append((place.line, busy)))
    service.prepare_at(URI, PATH, DOC, 1, 1, 14, "cursor")
    await service.ahead.wait()
    assert seen == [(1, True), (1, False)]


def test_an_idle_job_is_cancelled_by_any_job_queued_after_it(engine: FakeEngine) -> None:
    worker = EngineWorker(lambda: engine)
    try:
        engine.prepare_seconds = 30.0
        token = CancelToken()
        idle = worker.submit(lambda e: e.prepare("x", "", cancel=token), token, idle=True)
        assert engine.preparing.wait(5)
        queued = CancelToken()
        waiting = worker.submit(lambda e: e.prepare("y", "", cancel=queued), queued, idle=True)
        real = worker.submit(lambda e: "answered")
        assert real.result(timeout=5) == "answered"
        assert idle.result(timeout=5) == 0 and token.is_set()
        with pytest.raises(Cancelled):
            waiting.result(timeout=5)
    finally:
        worker.close()


def _state(size: int) -> ctypes.Array[ctypes.c_uint8]:
    return (ctypes.c_uint8 * size)()


def test_parked_prompts_stay_within_their_memory_budget_the_oldest_leaving_first() -> None:
    parked = ParkedPrompts(budget=250)
    for i in range(3):
        parked.add(_state(100), [i] * 10)
    assert len(parked) == 2 and parked.size == 200
    assert parked.tokens() == [[2] * 10, [1] * 10]


def test_a_prompt_parked_again_replaces_its_older_copy() -> None:
    parked = ParkedPrompts(budget=1000)
    parked.add(_state(100), [1] * 10)
    parked.add(_state(100), [2] * 10)
    parked.add(_state(100), [1] * 10)
    assert parked.tokens() == [[1] * 10, [2] * 10]


def test_the_parked_prompt_that_shares_most_with_the_new_one_is_taken() -> None:
    parked = ParkedPrompts()
    parked.add(_state(10), list(range(300)))
    parked.add(_state(10), list(range(1000, 1300)))
    taken = parked.take_best([7] * 300, list(range(300)) + [5])
    assert taken is not None and taken.tokens == list(range(300)) and len(parked) == 1


async def test_the_cursor_resting_where_a_request_was_just_made_keeps_the_next_line_being_prepared(
    service: CompletionService, engine: FakeEngine
) -> None:
    doc = "def add(a, b):\n    return a +\n"
    await service.complete(URI, PATH, doc, 1, 1, 14, CancelToken())
    service.prepare_at(URI, PATH, doc, 1, 1, 14, "cursor")
    await service.ahead.wait()
    assert [reason for reason, n in service.ahead.by_reason.items() if n] == ["next line"]


def test_a_cursor_notification_is_read_and_a_malformed_one_refused() -> None:
    from greenpatch.protocol.completion import cursor_at

    good = {"uri": URI, "version": 3, "position": {"line": 2, "character": 5}}
    assert cursor_at(good) == (URI, 3, 2, 5)
    assert cursor_at({**good, "version": None}) == (URI, None, 2, 5), "the version is optional"
    assert cursor_at({"uri": URI, "position": {"line": -1, "character": 0}}) is None
    assert cursor_at({"uri": URI, "position": {"line": True, "character": 0}}) is None
    assert cursor_at({"position": {"line": 1, "character": 0}}) is None
    assert cursor_at(None) is None


# --- a short prompt first at a cold place ------------------------------------------------------------------------

LONG = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(60)) + "def g(a, b):\n    return a +\n"
LONG_LINE = LONG.count("\n") - 1


@pytest.fixture
def cold_engine() -> FakeEngine:
    return FakeEngine(cold_prompts=True)


@pytest.fixture
def cold_service(cold_engine: FakeEngine):
    worker = EngineWorker(lambda: cold_engine)
    yield CompletionService(worker, CompletionSettings(debounce_ms=0, short_prompt_tokens=64))
    worker.close()


async def test_a_cold_place_is_answered_from_a_short_prompt_and_the_full_one_is_prepared_behind_it(
    cold_service: CompletionService, cold_engine: FakeEngine
) -> None:
    s = await cold_service.complete(URI, PATH, LONG, 1, LONG_LINE, 14, CancelToken())
    assert s is not None and s.short and s.text == " b"
    short_prefix = str(cold_engine.calls[0]["prefix"])
    assert short_prefix.endswith("    return a +") and len(short_prefix) <= 64 * 3.5
    await cold_service.ahead.wait()
    full_prefix, _, done = cold_engine.prepared[-1]
    assert done and len(full_prefix) > 2 * len(short_prefix), "the full window, prepared behind the short one"
    assert cold_service.ahead.by_reason["behind"] == 1
    typed = LONG[:-1] + " 2 *\n"  # the user typed on, not what was shown: the place's full prompt is there now
    s = await cold_service.complete(URI, PATH, typed, 2, LONG_LINE, 18, CancelToken())
    assert s is not None and not s.short and len(str(cold_engine.calls[-1]["prefix"])) > 2 * len(short_prefix)


async def test_without_preparing_ahead_every_place_gets_the_full_prompt(cold_engine: FakeEngine) -> None:
    worker = EngineWorker(lambda: cold_engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, short_prompt_tokens=64,
                                                           prepare_ahead=False))
    try:
        s = await service.complete(URI, PATH, LONG, 1, LONG_LINE, 14, CancelToken())
    finally:
        worker.close()
    assert s is not None and not s.short and len(str(cold_engine.calls[0]["prefix"])) > 64 * 3.5


async def test_a_resting_cursor_prepares_the_short_prompt_first(cold_service: CompletionService,
                                                                cold_engine: FakeEngine) -> None:
    cold_service.prepare_at(URI, PATH, LONG, 1, LONG_LINE, 14, "cursor")
    await cold_service.ahead.wait()
    assert [len(p) <= 64 * 3.5 for p, _, _ in cold_engine.prepared] == [True, False]


async def test_a_cursor_resting_at_the_end_of_a_finished_line_prepares_the_line_after_it(
    service: CompletionService, engine: FakeEngine
) -> None:
    service.prepare_at(URI, PATH, FINISHED, 1, 1, 17, "cursor")
    await service.ahead.wait()
    assert engine.prepared[-1][0].endswith("    total = a + b\n    ") and service.ahead.by_reason["next line"] == 1
    service.prepare_at(URI, PATH, FINISHED, 2, 5, 14, "cursor")  # `return a -` goes on: the place itself
    await service.ahead.wait()
    assert engine.prepared[-1][0].endswith("    return a -") and service.ahead.by_reason["cursor"] == 1


async def test_the_line_after_a_finished_one_has_its_suggestion_ready_when_enter_is_pressed(
    service: CompletionService, engine: FakeEngine
) -> None:
    service.prepare_at(URI, PATH, FINISHED, 1, 1, 17, "cursor")
    await service.ahead.wait()
    assert service.suggested_ahead == 1
    calls = len(engine.calls)
    s = await service.complete(URI, PATH, ENTERED, 2, 2, 4, CancelToken())
    assert s is not None and s.ahead and s.cached and len(engine.calls) == calls, "from the cache, no model call"


async def test_a_request_elsewhere_stops_the_suggestion_being_made_ahead(service: CompletionService,
                                                                       engine: FakeEngine) -> None:
    engine.per_token = 0.2
    engine.text = "return total * 2 if total else 0"
    service.prepare_at(URI, PATH, FINISHED, 1, 1, 17, "cursor")
    await asyncio.sleep(0.3)
    engine.text, engine.per_token = " b", 0.0
    started = time.perf_counter()
    s = await service.complete(URI, PATH, FINISHED, 2, 5, 14, CancelToken())
    assert s is not None and s.text == " b" and time.perf_counter() - started < 1.0
    await service.ahead.wait()
    assert service.cache.get(*split_at(ENTERED, 2, 4), "line") is None, "stopped, not finished later"


async def test_enter_pressed_while_the_next_line_is_being_suggested_waits_for_that_suggestion(
    service: CompletionService, engine: FakeEngine
) -> None:
    engine.text, engine.per_token = "return total", 0.15
    service.prepare_at(URI, PATH, FINISHED, 1, 1, 17, "cursor")
    await asyncio.sleep(0.1)
    service.notify_change(URI, 2)
    service.prepare_at(URI, PATH, ENTERED, 2, 2, 4, "edit")  # the didChange of Enter
    s = await service.complete(URI, PATH, ENTERED, 2, 2, 4, CancelToken())
    assert s is not None and s.ahead and s.text == "return total"
    assert len([c for c in engine.calls if str(c["prefix"]).endswith("a + b\n    ")]) == 1, "made once, ahead"


async def test_a_short_prompts_suggestion_is_cut_at_a_surer_token(cold_engine: FakeEngine) -> None:
    from greenpatch.completion.filters import SHORT_PROMPT_CUT

    between = (SHORT_PROMPT_CUT + CompletionSettings.cut_logprob) / 2  # unsure for a short prompt, not for a full one
    cold_engine.text, cold_engine.logprobs = " b + c", [-0.01, between, -0.01]
    worker = EngineWorker(lambda: cold_engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, short_prompt_tokens=64))
    try:
        s = await service.complete(URI, PATH, LONG, 1, LONG_LINE, 14, CancelToken())
        assert s is not None and s.short and s.shown and s.text == " b", "shown up to its unsure token"
        await service.ahead.wait()
        typed = LONG[:-1] + " 2 *\n"
        s = await service.complete(URI, PATH, typed, 2, LONG_LINE, 18, CancelToken())
        assert s is not None and not s.short and s.text == " b + c", "the full prompt's, as sure, is shown whole"
    finally:
        worker.close()
