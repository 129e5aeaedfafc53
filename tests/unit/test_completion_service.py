"""The completion service with the fake engine: versions, cancellation, the cache and typed-along reuse."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import ErrorKind, ModelNotInstalled

URI = "file:///work/calc.py"
PATH = Path("/work/calc.py")
DOC = "def add(a, b):\n    return a +\n"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def service(engine: FakeEngine):
    worker = EngineWorker(lambda: engine)
    yield CompletionService(worker, CompletionSettings(debounce_ms=0))
    worker.close()


async def test_a_suggestion_completes_the_line(service: CompletionService) -> None:
    s = await service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken())
    assert s is not None and s.shown and s.text == " b" and not s.cached


async def test_a_model_that_is_not_installed_reaches_the_caller_as_its_own_error() -> None:
    def missing() -> FakeEngine:
        raise ModelNotInstalled("model 'tiny' is not installed", "run `greenpatch model install tiny`")

    worker = EngineWorker(missing)
    try:
        service = CompletionService(worker, CompletionSettings(debounce_ms=0))
        for _ in range(2):  # each request raises it again: nothing is kept from the last one
            with pytest.raises(ModelNotInstalled) as caught:
                await service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken())
            assert caught.value.kind is ErrorKind.NOT_INSTALLED
    finally:
        worker.close()


async def test_an_empty_line_asks_the_engine_for_code_first(service: CompletionService, engine: FakeEngine) -> None:
    await service.complete(URI, PATH, DOC + "    \n", 1, 2, 4, CancelToken())
    await service.complete(URI, PATH, DOC, 2, 1, 14, CancelToken())
    assert [c["code_first"] for c in engine.calls] == [True, False]


async def test_typing_the_start_of_the_suggestion_answers_from_the_cache(
    service: CompletionService, engine: FakeEngine
) -> None:
    engine.text = "total_price(items)"
    doc = "x = \n"
    first = await service.complete(URI, PATH, doc, 1, 0, 4, CancelToken())
    assert first is not None and first.text == "total_price(items)"
    calls = len(engine.calls)
    typed = "x = tot\n"
    service.notify_change(URI, 2)
    second = await service.complete(URI, PATH, typed, 2, 0, 7, CancelToken())
    assert second is not None and second.cached and second.text == "al_price(items)"
    assert len(engine.calls) == calls, "no model call for a typed-along suggestion"


async def test_typing_the_unsure_start_of_a_withheld_suggestion_shows_the_rest(
    service: CompletionService, engine: FakeEngine
) -> None:
    engine.text = "total = price(items) + tax"
    engine.logprobs = [-2.0]  # unsure of the first word only; the rest is -0.05 a token
    first = await service.complete(URI, PATH, "\n", 1, 0, 0, CancelToken())
    assert first is not None and not first.shown, "the whole line is below the gate"
    service.notify_change(URI, 2)
    second = await service.complete(URI, PATH, "total\n", 2, 0, 5, CancelToken())
    assert second is not None and second.shown and second.cached and second.text == " = price(items) + tax"
    assert second.mean_logprob == pytest.approx(-0.05)
    service.notify_change(URI, 3)
    third = await service.complete(URI, PATH, "total =\n", 3, 0, 7, CancelToken())
    assert third is not None and third.shown and third.text == " price(items) + tax"
    assert len(engine.calls) == 1


async def test_a_withheld_suggestion_whose_rest_is_unsure_stays_withheld(
    service: CompletionService, engine: FakeEngine
) -> None:
    engine.text = "total = price(items) + tax"
    engine.logprobs = [-0.05, -0.05, -0.05, -2.0, -2.0]
    await service.complete(URI, PATH, "\n", 1, 0, 0, CancelToken())
    service.notify_change(URI, 2)
    second = await service.complete(URI, PATH, "total\n", 2, 0, 5, CancelToken())
    assert second is not None and not second.shown and second.mean_logprob == pytest.approx(-1.025)
    assert len(engine.calls) == 1, "the model would say the same again"
    service.notify_change(URI, 3)
    await service.complete(URI, PATH, "totals\n", 3, 0, 6, CancelToken())
    assert len(engine.calls) == 2, "typing something else asks the model"


async def test_a_suggestion_is_shown_up_to_its_first_unsure_token_and_the_rest_once_that_is_typed(
    engine: FakeEngine,
) -> None:
    worker = EngineWorker(lambda: engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-1.0, cut_logprob=-1.0))
    engine.text = "total = price(items) + tax"
    engine.logprobs = [-0.05, -0.05, -2.0]  # unsure of " price(items)" only
    first = await service.complete(URI, PATH, "\n", 1, 0, 0, CancelToken())
    assert first is not None and first.shown and first.text == "total ="
    service.notify_change(URI, 2)
    second = await service.complete(URI, PATH, "total = price(items)\n", 2, 0, 20, CancelToken())
    assert second is not None and second.shown and second.text == " + tax"
    assert len(engine.calls) == 1, "the rest was the model's already"
    worker.close()


async def test_a_suggestion_unsure_from_its_first_token_shows_nothing_until_that_is_typed(engine: FakeEngine) -> None:
    worker = EngineWorker(lambda: engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-1.0, cut_logprob=-1.0))
    engine.text = "total = price(items) + tax"
    engine.logprobs = [-2.0]
    first = await service.complete(URI, PATH, "\n", 1, 0, 0, CancelToken())
    assert first is not None and not first.shown
    service.notify_change(URI, 2)
    second = await service.complete(URI, PATH, "total\n", 2, 0, 5, CancelToken())
    assert second is not None and second.shown and second.text == " = price(items) + tax"
    worker.close()


async def test_typing_along_a_line_the_filters_dropped_asks_the_model_nothing(
    service: CompletionService, engine: FakeEngine
) -> None:
    engine.text = "total_price(items)"
    below = "\nx = total_price(items)\n"  # the model's line repeats the line below: dropped
    first = await service.complete(URI, PATH, "x = " + below, 1, 0, 4, CancelToken())
    assert first is not None and not first.shown and first.text == ""
    service.notify_change(URI, 2)
    second = await service.complete(URI, PATH, "x = tot" + below, 2, 0, 7, CancelToken())
    assert second is not None and second.cached and not second.shown and second.text == ""
    assert len(engine.calls) == 1, "the same file again: dropped again, without asking the model"
    service.notify_change(URI, 3)
    await service.complete(URI, PATH, "x = q" + below, 3, 0, 5, CancelToken())
    assert len(engine.calls) == 2, "typing something else asks the model"


async def test_typing_something_else_asks_the_model_again(service: CompletionService, engine: FakeEngine) -> None:
    engine.text = "total_price(items)"
    await service.complete(URI, PATH, "x = \n", 1, 0, 4, CancelToken())
    calls = len(engine.calls)
    await service.complete(URI, PATH, "x = q\n", 2, 0, 5, CancelToken())
    assert len(engine.calls) == calls + 1


async def test_the_same_position_again_is_a_cache_hit(service: CompletionService, engine: FakeEngine) -> None:
    await service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken())
    again = await service.complete(URI, PATH, DOC, 2, 1, 14, CancelToken())
    assert again is not None and again.cached and again.text == " b"
    assert len(engine.calls) == 1


async def test_a_request_for_an_old_version_returns_nothing(service: CompletionService) -> None:
    service.notify_change(URI, 5)
    assert await service.complete(URI, PATH, DOC, 4, 1, 14, CancelToken()) is None


async def test_a_newer_version_cancels_the_model_call_in_flight(engine: FakeEngine) -> None:
    engine.text = "a b c d e f g h i j k l"
    engine.per_token = 0.05
    worker = EngineWorker(lambda: engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0))
    try:
        task = asyncio.ensure_future(service.complete(URI, PATH, "x = \n", 1, 0, 4, CancelToken()))
        while not engine.calls:  # wait until the engine has started generating
            await asyncio.sleep(0.005)
        service.notify_change(URI, 2)
        assert await asyncio.wait_for(task, 2) is None
    finally:
        worker.close()


async def test_a_newer_request_during_the_debounce_supersedes_the_older(engine: FakeEngine) -> None:
    worker = EngineWorker(lambda: engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=5000))
    try:
        older = asyncio.ensure_future(service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken()))
        await asyncio.sleep(0)
        service.notify_change(URI, 2)
        assert await asyncio.wait_for(older, 2) is None
        assert engine.calls == [], "the superseded request never reached the model"
    finally:
        worker.close()


async def test_a_low_confidence_suggestion_is_withheld_by_the_gate(engine: FakeEngine) -> None:
    worker = EngineWorker(lambda: engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=0.0))
    try:
        s = await service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken())
        assert s is not None and s.text == " b" and not s.shown
    finally:
        worker.close()


async def test_a_cancelled_client_request_returns_nothing(engine: FakeEngine) -> None:
    engine.delay = 5
    worker = EngineWorker(lambda: engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0))
    token = CancelToken()
    try:
        task = asyncio.ensure_future(service.complete(URI, PATH, DOC, 1, 1, 14, token))
        while not engine.calls:
            await asyncio.sleep(0.005)
        token.cancel()
        assert await asyncio.wait_for(task, 2) is None
    finally:
        worker.close()


async def test_a_line_cut_off_by_the_token_limit_is_not_shown() -> None:
    engine = FakeEngine(text=" ".join(["word"] * 200))
    worker = EngineWorker(lambda: engine)
    try:
        service = CompletionService(worker, CompletionSettings(debounce_ms=0))
        s = await service.complete(URI, PATH, DOC, 1, 1, 14, CancelToken())
        assert s is not None and not s.shown and s.text == ""
    finally:
        worker.close()


@pytest.mark.parametrize(("budget", "expected"), [(0.1, "total = 0"), (0.0, "total = 0\n    for x in xs:\n        total += x")])
async def test_a_block_out_of_time_shows_the_complete_lines_it_has(budget: float, expected: str) -> None:
    engine = FakeEngine(text="total = 0\n    for x in xs:\n        total += x\n", per_token=0.05)
    worker = EngineWorker(lambda: engine)
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, block_seconds=budget))
    try:
        s = await service.complete(URI, PATH, "def f(xs):\n    \n", 1, 1, 4, CancelToken())
    finally:
        worker.close()
    assert s is not None and s.mode == "block" and s.text == expected, "0: no time limit"


async def _ahead_done(service: CompletionService) -> None:
    while service._prefetch is not None and not service._prefetch.task.done():
        await asyncio.sleep(0.005)


async def test_the_next_line_is_computed_ahead_while_a_line_is_shown(
    service: CompletionService, engine: FakeEngine
) -> None:
    engine.text, service.settings.prefetch = "total_price(items)", True
    first = await service.complete(URI, PATH, "def f(items):\n    x = \n", 1, 1, 8, CancelToken())
    assert first is not None and first.shown
    await _ahead_done(service)
    assert service.prefetches == 1 and len(engine.calls) == 2
    assert engine.calls[1]["prefix"].endswith("    x = total_price(items)\n    "), "accepted, then Enter"
    service.notify_change(URI, 2)
    whole = await service.complete(URI, PATH, "def f(items):\n    x = total_price(items)\n", 2, 1, 26, CancelToken())
    assert whole is not None and not whole.shown and whole.cached, "accepted whole: nothing more, no model call"
    service.notify_change(URI, 3)
    accepted = "def f(items):\n    x = total_price(items)\n    \n"
    after_enter = await service.complete(URI, PATH, accepted, 3, 2, 4, CancelToken())
    assert after_enter is not None and after_enter.cached and after_enter.text == "total_price(items)"
    await _ahead_done(service)
    assert len(engine.calls) == 3, "answered ahead; the line after it is computed ahead in turn"


async def test_enter_while_the_next_line_is_still_computed_ahead_waits_for_it(
    service: CompletionService, engine: FakeEngine
) -> None:
    engine.text, service.settings.prefetch = "total_price(items)", True
    await service.complete(URI, PATH, "x = \n", 1, 0, 4, CancelToken())
    engine.delay = 0.2  # the work ahead is under way when Enter comes
    service.notify_change(URI, 2)
    s = await service.complete(URI, PATH, "x = total_price(items)\n\n", 2, 1, 0, CancelToken())
    assert s is not None and s.cached and s.text == "total_price(items)"
    assert len(engine.calls) == 2, "no second model call for the same place"


async def test_a_request_elsewhere_cancels_the_work_ahead(service: CompletionService, engine: FakeEngine) -> None:
    engine.text, service.settings.prefetch = "total_price(items)", True
    await service.complete(URI, PATH, "x = \n", 1, 0, 4, CancelToken())
    engine.delay = 5.0
    while len(engine.calls) < 2:  # the work ahead has reached the engine
        await asyncio.sleep(0.005)
    engine.delay, engine.text = 0.0, "len(items)"
    service.notify_change(URI, 2)
    s = await asyncio.wait_for(service.complete(URI, PATH, "y = \n", 2, 0, 4, CancelToken()), 3)
    assert s is not None and not s.cached and s.text == "len(items)", "not kept waiting for the work ahead"


async def test_no_work_ahead_when_off_or_when_the_line_goes_on_after_the_cursor(engine: FakeEngine) -> None:
    engine.text = "total_price(items)"
    worker = EngineWorker(lambda: engine)
    try:
        off = CompletionService(worker, CompletionSettings(debounce_ms=0))  # the default
        await off.complete(URI, PATH, "x = \n", 1, 0, 4, CancelToken())
        on = CompletionService(worker, CompletionSettings(debounce_ms=0, prefetch=True))
        await on.complete(URI, PATH, "x = ()\n", 1, 0, 5, CancelToken())
        await _ahead_done(on)
        assert off.prefetches == 0 and on.prefetches == 0 and len(engine.calls) == 2
    finally:
        worker.close()


@pytest.mark.parametrize(("texts", "doc", "line", "col", "expected"), [
    # the end of a function, nothing below: the line comes with its body
    (["if not xs:", "        return 0\n"], "def f(xs):\n    total = sum(xs)\n    \n", 2, 4, "if not xs:\n        return 0"),
    # a definition below, and no body comes: on an empty line, nothing is shown
    (["if not xs:", ""], "def f(xs):\n    t = 1\n    \n\n\ndef g():\n    pass\n", 2, 4, ""),
    # no body comes, but the user began the line: it is completed
    (["a, b):", ""], "def add(", 0, 8, "a, b):"),
])
async def test_a_line_that_opens_a_block_where_no_code_follows_comes_with_its_body(
        texts: list[str], doc: str, line: int, col: int, expected: str) -> None:
    engine = FakeEngine(texts=texts)
    worker = EngineWorker(lambda: engine)
    try:
        service = CompletionService(worker, CompletionSettings(debounce_ms=0))
        s = await service.complete(URI, PATH, doc, 1, line, col, CancelToken())
        assert s is not None and s.text == expected and s.shown == bool(expected)
        assert len(engine.calls) == 2, "the body was asked for"
        asked = engine.calls[1]
        assert str(asked["prefix"]).endswith(doc.split("\n")[line][:col] + texts[0] + "\n")
        assert asked["code_first"] and "\ndef " in (asked["stop"] or [])  # type: ignore[operator]
    finally:
        worker.close()
